// The parts of @kubernetes/client-node that kube/client.ts uses, in one module that
// client.ts require()s on first use (see clientNode() there). Required through this module
// rather than directly, so that esbuild still drops what nobody uses: a package required
// as a whole keeps every export (client-node's chunk doubled to 6.6 MB that way).
export { ApiException, CoreV1Api, KubeConfig, NetworkingV1Api } from '@kubernetes/client-node'
export { ExecAuth } from '@kubernetes/client-node/dist/exec_auth.js'
