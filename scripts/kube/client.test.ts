import { chmodSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { ExitCode, formatError, UserError } from '../errors.ts'
import { apiStatus, connect, explainApiError, forbiddenRight, isConflict, isNotFound, loadKubeConfig, networkErrorCode } from './client.ts'

const cluster = { server: 'https://10.0.0.1:6443', namespace: 'builds', context: 'dev' }

function apiError(code: number, status: Record<string, unknown>): ApiException<string> {
  // client-node 2.x hands over the body as the raw JSON string.
  return new ApiException(code, 'request failed', JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, ...status }), {})
}

describe('networkErrorCode', () => {
  it('finds the system error code in the cause chain fetch builds', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' })
    const error = new TypeError('fetch failed', { cause })
    expect(networkErrorCode(error)).toBe('ECONNREFUSED')
  })

  it('recognises TLS failures', () => {
    const cause = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
    expect(networkErrorCode(new Error('x', { cause }))).toBe('DEPTH_ZERO_SELF_SIGNED_CERT')
    expect(networkErrorCode(Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }))).toBe('CERT_HAS_EXPIRED')
  })

  it('finds a code among the addresses an AggregateError tried', () => {
    const tried = [Object.assign(new Error('connect ETIMEDOUT ::1'), { code: 'ETIMEDOUT' })]
    const error = new TypeError('fetch failed', { cause: new AggregateError(tried, 'all failed') })
    expect(networkErrorCode(error)).toBe('ETIMEDOUT')
  })

  it('treats any other fetch failure as the network, naming its innermost cause', () => {
    expect(networkErrorCode(new TypeError('fetch failed', { cause: new Error('bad port') }))).toBe('bad port')
    expect(networkErrorCode(new TypeError('fetch failed'))).toBe('fetch failed')
    expect(explainApiError(new TypeError('fetch failed', { cause: new Error('bad port') }), cluster, 'list pods').message)
      .toBe('cannot reach the cluster at https://10.0.0.1:6443 (bad port) while trying to list pods')
  })

  it('ignores errors that are not about the network', () => {
    expect(networkErrorCode(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBeUndefined()
    expect(networkErrorCode(undefined)).toBeUndefined()
  })
})

describe('apiStatus', () => {
  it('parses the JSON string body', () => {
    const error = apiError(404, { reason: 'NotFound', message: 'pods "trampoline-x" not found' })
    expect(apiStatus(error)).toEqual({ code: 404, reason: 'NotFound', message: 'pods "trampoline-x" not found' })
    expect(isNotFound(error)).toBe(true)
    expect(isConflict(error)).toBe(false)
  })

  it('keeps a body that is not JSON as the message', () => {
    expect(apiStatus(new ApiException(502, 'x', '<html>bad gateway</html>', {}))).toEqual({ code: 502, reason: undefined, message: '<html>bad gateway</html>' })
  })
})

describe('explainApiError', () => {
  it('says forbidden with the namespace and what rights to ask for', () => {
    const error = explainApiError(
      apiError(403, { reason: 'Forbidden', message: 'pods is forbidden: User "bob" cannot create resource "pods" in API group "" in the namespace "builds"' }),
      cluster,
      'create pod trampoline-x',
    ) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.exitCode).toBe(ExitCode.forbidden)
    expect(error.message).toContain('forbidden: cannot create pod trampoline-x in namespace "builds"')
    expect(error.message).toContain('User "bob"')
    expect(error.hint).toMatch(/^The missing RBAC right: "create" on pods\. container\/rbac\.yaml is a Role/)
    expect(error.hint).toContain('networkpolicies')
    expect(error.hint).toContain('namespace "builds"')
    expect(error.hint).toContain('trampoline doctor')
  })

  it('names the subresource and API group really forbidden', () => {
    const error = explainApiError(
      apiError(403, { reason: 'Forbidden', message: 'networkpolicies.networking.k8s.io is forbidden: User "bob" cannot list resource "networkpolicies" in API group "networking.k8s.io" in the namespace "builds"' }),
      cluster,
      'list NetworkPolicys',
    ) as UserError
    expect(error.hint).toMatch(/^The missing RBAC right: "list" on networkpolicies \(API group networking\.k8s\.io\)\./)
    expect(forbiddenRight('pods "x" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "b"')).toEqual({ verb: 'create', resource: 'pods/exec', group: '' })
    expect(forbiddenRight('nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope')).toEqual({ verb: 'list', resource: 'nodes', group: '' })
    expect(forbiddenRight('something else')).toBeUndefined()
  })

  it('keeps the general hint when the message names no right', () => {
    const error = explainApiError(apiError(403, { reason: 'Forbidden' }), cluster, 'list pods') as UserError
    expect(error.hint).toMatch(/^container\/rbac\.yaml is a Role with every right trampoline needs \(pods, pods\/exec, /)
  })

  it('tells Pod Security and quota refusals (also 403) from RBAC', () => {
    const psa = explainApiError(
      apiError(403, { reason: 'Forbidden', message: 'pods "trampoline-x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "nix-daemon" must not set securityContext.privileged=true)' }),
      cluster,
      'create pod trampoline-x',
    ) as UserError
    expect(psa.exitCode).toBe(ExitCode.podFailed)
    expect(psa.message).toMatch(/^namespace "builds" does not allow the pod: pods "trampoline-x" is forbidden: violates PodSecurity/)
    expect(psa.hint).toContain('pod-security.kubernetes.io/enforce=privileged')
    const quota = explainApiError(
      apiError(403, { reason: 'Forbidden', message: 'persistentvolumeclaims "trampoline-x" is forbidden: exceeded quota: storage, requested: requests.storage=50Gi, used: requests.storage=0, limited: requests.storage=10Gi' }),
      cluster,
      'create PVC trampoline-x',
    ) as UserError
    expect(quota.exitCode).toBe(ExitCode.podFailed)
    expect(quota.message).toMatch(/^a ResourceQuota in namespace "builds" leaves no room to create PVC trampoline-x: /)
  })

  it('says the namespace is missing', () => {
    const error = explainApiError(apiError(404, { reason: 'NotFound', message: 'namespaces "builds" not found' }), cluster, 'create pod x') as UserError
    expect(error.message).toBe('namespace "builds" does not exist')
    expect(error.exitCode).toBe(ExitCode.notFound)
  })

  it('says the cluster is unreachable, with the server and context', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    const error = explainApiError(new TypeError('fetch failed', { cause }), cluster, 'list pods') as UserError
    expect(error.message).toBe('cannot reach the cluster at https://10.0.0.1:6443 (ECONNREFUSED) while trying to list pods')
    expect(error.hint).toContain('"dev"')
    expect(error.exitCode).toBe(ExitCode.cluster)
  })

  it('says credentials were rejected on 401', () => {
    const error = explainApiError(apiError(401, { reason: 'Unauthorized', message: 'Unauthorized' }), cluster, 'list pods') as UserError
    expect(error.exitCode).toBe(ExitCode.cluster)
    expect(error.message).toMatch(/rejected our credentials/)
  })

  it('passes on the server message for anything else', () => {
    const error = explainApiError(apiError(422, { reason: 'Invalid', message: 'Pod "x" is invalid: spec.containers[0].image: Required value' }), cluster, 'create pod x') as UserError
    expect(error.message).toBe('the cluster refused to create pod x: Pod "x" is invalid: spec.containers[0].image: Required value')
    expect(error.exitCode).toBe(ExitCode.failure)
  })

  it('leaves user errors and unrelated errors alone', () => {
    const user = new UserError('already explained')
    expect(explainApiError(user, cluster, 'x')).toBe(user)
    const bug = new RangeError('bug')
    expect(explainApiError(bug, cluster, 'x')).toBe(bug)
  })
})

// A kubeconfig in a temp directory whose user runs `plugin` (a shell script written
// beside it, referenced relatively as kubectl allows) for credentials.
function kubeconfigWithPlugin(plugin: string | undefined, options: { server?: string; command?: string; installHint?: string; absolute?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'exec-auth-'))
  if (plugin !== undefined) {
    writeFileSync(join(dir, 'plugin.sh'), `#!/bin/sh\n${plugin}\n`)
    chmodSync(join(dir, 'plugin.sh'), 0o755)
  }
  const exec = {
    apiVersion: 'client.authentication.k8s.io/v1beta1',
    command: options.command ?? (options.absolute ? join(dir, 'plugin.sh') : './plugin.sh'),
    args: ['get-token', '--cluster', 'dev'],
    ...(options.installHint ? { installHint: options.installHint } : {}),
  }
  const server = options.server ?? 'https://127.0.0.1:1'
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'dev', cluster: { server, ...(server.startsWith('http:') ? { 'insecure-skip-tls-verify': true } : {}) } }],
    users: [{ name: 'sso', user: { exec } }],
    contexts: [{ name: 'dev', context: { cluster: 'dev', user: 'sso', namespace: 'builds' } }],
    'current-context': 'dev',
  }
  writeFileSync(join(dir, 'config'), JSON.stringify(config))
  return join(dir, 'config')
}

const EXPIRED = 'echo "Error loading SSO Token: Token for my-sso does not exist" >&2; echo "To refresh: aws sso login --profile dev" >&2; exit 1'

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a rejection')
}

describe('exec credential plugins', () => {
  // Where the failure surfaces without us: client-node's ExecAuth runs the plugin inside
  // applySecurityAuthentication, before any request, and rejects the API call with a
  // bare Error carrying the plugin's stderr; that used to be an internal error (exit 70).
  // (An absolute command: client-node does not resolve a relative one against the file.)
  it('client-node alone rejects the API call with a bare Error (the bug this module fixes)', async () => {
    const kc = new KubeConfig()
    kc.loadFromFile(kubeconfigWithPlugin(EXPIRED, { absolute: true }))
    const error = await rejection(kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'builds' }))
    expect(error).not.toBeInstanceOf(ApiException)
    expect((error as Error).message).toContain('Token for my-sso does not exist')
    expect(formatError(error).exitCode).toBe(ExitCode.internal)
  })

  it('a plugin that exits non-zero is exit 3 with its own message and a login hint (REST calls)', async () => {
    const cluster = connect({ kubeconfig: kubeconfigWithPlugin(EXPIRED) })
    const error = await rejection(cluster.core.listNamespacedPod({ namespace: cluster.namespace })) as UserError
    expect(error).toBeInstanceOf(UserError)
    const { text, exitCode } = formatError(error)
    expect(exitCode).toBe(ExitCode.cluster)
    expect(text).toMatch(/^trampoline: the credential plugin "\/.*\/plugin\.sh" of kubeconfig user "sso" failed:\n {4}Error loading SSO Token: Token for my-sso does not exist\n {4}To refresh: aws sso login --profile dev\n {2}The plugin gets your cluster credentials/)
    expect(error.hint).toContain('log in again')
    // And as the command sees it, through explainApiError.
    expect(explainApiError(error, cluster, 'list pods')).toBe(error)
  })

  it('the same for exec and port-forward websockets (applyToHTTPSOptions)', async () => {
    const { kc } = connect({ kubeconfig: kubeconfigWithPlugin(EXPIRED) })
    const error = await rejection(kc.applyToHTTPSOptions({})) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.exitCode).toBe(ExitCode.cluster)
    expect(error.message).toContain('Token for my-sso does not exist')
  })

  it('says when the plugin is not installed, with its installHint', async () => {
    const cluster = connect({ kubeconfig: kubeconfigWithPlugin(undefined, { command: 'trampoline-test-no-such-plugin', installHint: 'Install it with: gcloud components install gke-gcloud-auth-plugin' }) })
    const error = await rejection(cluster.core.listNamespacedPod({ namespace: 'builds' })) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.exitCode).toBe(ExitCode.cluster)
    expect(error.message).toBe('the credential plugin "trampoline-test-no-such-plugin" of kubeconfig user "sso" is not installed (not found on PATH)')
    expect(error.hint).toBe('Install it with: gcloud components install gke-gcloud-auth-plugin')
  })

  it('says when the plugin prints something that is not an ExecCredential', async () => {
    for (const output of ['echo "<html>login page</html>"', 'echo "{}"']) {
      const cluster = connect({ kubeconfig: kubeconfigWithPlugin(output) })
      const error = await rejection(cluster.core.listNamespacedPod({ namespace: 'builds' })) as UserError
      expect(error).toBeInstanceOf(UserError)
      expect(error.exitCode).toBe(ExitCode.cluster)
      expect(error.message).toMatch(/printed no valid ExecCredential/)
    }
  })

  it('a plugin that succeeds gets $KUBERNETES_EXEC_INFO and its token reaches the API server', async () => {
    let authorization: string | undefined
    const server = createServer((req, res) => {
      authorization = req.headers.authorization
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [] }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const { port } = server.address() as AddressInfo
      const credential = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'sso-token' } })
      const path = kubeconfigWithPlugin(`printf '%s' "$KUBERNETES_EXEC_INFO" > "$(dirname "$0")/exec-info"; echo '${credential}'`, { server: `http://127.0.0.1:${port}` })
      const cluster = connect({ kubeconfig: path })
      expect((await cluster.core.listNamespacedPod({ namespace: 'builds' })).items).toEqual([])
      expect(authorization).toBe('Bearer sso-token')
      const info = JSON.parse(readFileSync(join(dirname(path), 'exec-info'), 'utf8'))
      expect(info).toEqual({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', spec: { interactive: false } })
    } finally {
      server.close()
    }
  })
})

describe('other credential failures', () => {
  it('a client certificate file that is gone is exit 3 naming the file, not an internal error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcfg-'))
    writeFileSync(join(dir, 'config'), JSON.stringify({
      clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1' } }],
      users: [{ name: 'u', user: { 'client-certificate': 'gone.crt', 'client-key': 'gone.key' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    }))
    const cluster = connect({ kubeconfig: join(dir, 'config') })
    const error = await rejection(cluster.core.listNamespacedPod({ namespace: 'default' })) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.exitCode).toBe(ExitCode.cluster)
    expect(error.message).toBe(`cannot read ${join(dir, 'gone.crt')}, named by context "x" of the kubeconfig (ENOENT)`)
  })
})

describe('loadKubeConfig', () => {
  function file(dir: string, name: string, config: object): string {
    writeFileSync(join(dir, name), JSON.stringify({ apiVersion: 'v1', kind: 'Config', ...config }))
    return join(dir, name)
  }

  it('chooses the context kubectl chooses from a KUBECONFIG list (client-node alone takes the last file\'s)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcfg-'))
    const a = file(dir, 'a', { clusters: [{ name: 'a', cluster: { server: 'https://a:6443' } }], contexts: [{ name: 'a', context: { cluster: 'a', namespace: 'ns-a' } }], 'current-context': 'a' })
    const b = file(dir, 'b', { clusters: [{ name: 'b', cluster: { server: 'https://b:6443' } }], contexts: [{ name: 'b', context: { cluster: 'b' } }], 'current-context': 'b' })
    const env = { KUBECONFIG: [a, b].join(delimiter) }
    const kc = loadKubeConfig({}, env, dir)
    expect(kc.getCurrentContext()).toBe('a')
    expect(kc.getCurrentCluster()?.server).toBe('https://a:6443')
    expect(kc.getContextObject('a')?.namespace).toBe('ns-a')
    expect(kc.getContexts().map((c) => c.name)).toEqual(['a', 'b'])
    expect(loadKubeConfig({ context: 'b' }, env, dir).getCurrentCluster()?.server).toBe('https://b:6443')
    const theirs = new KubeConfig()
    const saved = process.env.KUBECONFIG
    process.env.KUBECONFIG = env.KUBECONFIG
    try {
      theirs.loadFromDefault()
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG
      else process.env.KUBECONFIG = saved
    }
    expect(theirs.getCurrentContext()).toBe('b')
  })

  it('reads a token-file relative to its kubeconfig, trimmed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcfg-'))
    mkdirSync(join(dir, 'creds'))
    writeFileSync(join(dir, 'creds', 'token'), 'abc123\n')
    const path = file(join(dir, 'creds'), 'config', {
      clusters: [{ name: 'c', cluster: { server: 'https://c:6443' } }],
      users: [{ name: 'u', user: { 'token-file': 'token' } }],
      contexts: [{ name: 'x', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'x',
    })
    expect(loadKubeConfig({ kubeconfig: path }, {}, dir).getCurrentUser()?.token).toBe('abc123')
  })

  it('says there is no kubeconfig instead of silently targeting localhost:8080', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'))
    let error: unknown
    try {
      loadKubeConfig({}, {}, home)
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(UserError)
    expect((error as UserError).message).toBe('no kubeconfig found (no $KUBECONFIG, no ~/.kube/config)')
    expect((error as UserError).exitCode).toBe(ExitCode.cluster)
  })

  it('uses ~/.kube/config without $KUBECONFIG', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'))
    mkdirSync(join(home, '.kube'))
    file(join(home, '.kube'), 'config', { clusters: [{ name: 'c', cluster: { server: 'https://home:6443/' } }], contexts: [{ name: 'x', context: { cluster: 'c' } }], 'current-context': 'x' })
    expect(loadKubeConfig({}, {}, home).getCurrentCluster()?.server).toBe('https://home:6443')
  })
})
