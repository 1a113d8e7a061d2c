// Loading a kubeconfig and turning client-node failures into errors a person can act on.
import { existsSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { ApiException, CoreV1Api, KubeConfig, NetworkingV1Api } from '@kubernetes/client-node'
import { ExitCode, UserError } from '../errors.ts'

export interface ClusterOptions {
  kubeconfig?: string
  context?: string
  namespace?: string
}

export interface Cluster {
  kc: KubeConfig
  core: CoreV1Api
  networking: NetworkingV1Api
  namespace: string
  context: string
  server: string
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

/** Where loadFromDefault would look, in order; undefined when it would silently fall back. */
export function defaultKubeconfigSource(env = process.env, home = homedir()): string | undefined {
  if (env.KUBECONFIG) return `KUBECONFIG=${env.KUBECONFIG}`
  const file = join(home, '.kube', 'config')
  if (existsSync(file)) return file
  if (existsSync(IN_CLUSTER_TOKEN)) return 'in-cluster service account'
  return undefined
}

export function loadKubeConfig(options: ClusterOptions): KubeConfig {
  const kc = new KubeConfig()
  try {
    if (options.kubeconfig) {
      kc.loadFromFile(options.kubeconfig)
    } else {
      // loadFromDefault never fails: with nothing to read it targets http://localhost:8080,
      // which then looks like an unreachable cluster. Say what is really wrong instead.
      if (!defaultKubeconfigSource()) {
        throw new UserError('no kubeconfig found (no $KUBECONFIG, no ~/.kube/config)', {
          hint: 'Point --kubeconfig or $KUBECONFIG at your cluster\'s kubeconfig, or start a local one (minikube start).',
          exitCode: ExitCode.cluster,
        })
      }
      kc.loadFromDefault()
    }
  } catch (error) {
    if (error instanceof UserError) throw error
    const path = options.kubeconfig ?? process.env.KUBECONFIG ?? '~/.kube/config'
    throw new UserError(`cannot read kubeconfig ${path}: ${(error as Error).message}`, {
      hint: 'Check the file exists and is valid YAML (kubectl config view).',
      exitCode: ExitCode.cluster,
      cause: error,
    })
  }
  if (options.context) {
    if (!kc.getContextObject(options.context)) {
      const known = kc.getContexts().map((c) => c.name).join(', ') || 'none'
      throw new UserError(`context "${options.context}" is not in the kubeconfig (known: ${known})`, {
        exitCode: ExitCode.usage,
      })
    }
    kc.setCurrentContext(options.context)
  }
  if (!kc.getCurrentCluster()) {
    throw new UserError('the kubeconfig has no current context', {
      hint: 'Pick one with --context, or set one: kubectl config use-context <name>.',
      exitCode: ExitCode.cluster,
    })
  }
  return kc
}

export function connect(options: ClusterOptions): Cluster {
  const kc = loadKubeConfig(options)
  const context = kc.getCurrentContext()
  // $TRAMPOLINE_NAMESPACE: for callers that cannot pass flags (an agent's CLAUDE_CODE_SHELL).
  const namespace = options.namespace ?? (process.env.TRAMPOLINE_NAMESPACE || undefined) ?? kc.getContextObject(context)?.namespace ?? 'default'
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    networking: kc.makeApiClient(NetworkingV1Api),
    namespace,
    context,
    server: kc.getCurrentCluster()!.server,
  }
}

/** Status reason and message from an ApiException body (a raw JSON string in client-node 2.x). */
export function apiStatus(error: unknown): { code?: number; reason?: string; message?: string } {
  if (!(error instanceof ApiException)) return {}
  let body: { reason?: string; message?: string } = {}
  try {
    body = typeof error.body === 'string' ? JSON.parse(error.body) : (error.body ?? {})
  } catch {
    body = { message: String(error.body) }
  }
  return { code: error.code, reason: body.reason, message: body.message }
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404
}

export function isConflict(error: unknown): boolean {
  return error instanceof ApiException && error.code === 409
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET',
  'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET',
])

const isNetworkCode = (code: unknown): code is string =>
  typeof code === 'string' && (NETWORK_CODES.has(code) || code.startsWith('CERT_') || code.includes('SELF_SIGNED'))

/**
 * What went wrong on the way to the API server, from the cause chain fetch builds: a
 * system error code, one inside an AggregateError (each address tried), or, for a
 * `fetch failed` with no known code (a blocked port, a TLS or proxy failure), the
 * innermost cause's message. Undefined for errors that are not about the network.
 */
export function networkErrorCode(error: unknown): string | undefined {
  let innermost: any
  for (let e: any = error, depth = 0; e && depth < 6; e = e.cause, depth++) {
    if (isNetworkCode(e.code)) return e.code
    const inner = Array.isArray(e.errors) ? e.errors.find((x: any) => isNetworkCode(x?.code)) : undefined
    if (inner) return inner.code
    innermost = e
  }
  if (error instanceof TypeError && error.message === 'fetch failed') {
    return innermost && innermost !== error ? innermost.message || innermost.code || 'fetch failed' : 'fetch failed'
  }
  return undefined
}

/** Translate a failed API call into a UserError saying what happened and what to do. */
export function explainApiError(error: unknown, cluster: Pick<Cluster, 'server' | 'namespace' | 'context'>, doing: string): Error {
  if (error instanceof UserError) return error
  const netCode = networkErrorCode(error)
  if (netCode) {
    return new UserError(`cannot reach the cluster at ${cluster.server} (${netCode}) while trying to ${doing}`, {
      hint: `Is the cluster running and is context "${cluster.context}" the right one? Check with: kubectl cluster-info`,
      exitCode: ExitCode.cluster,
      cause: error,
    })
  }
  if (!(error instanceof ApiException)) return error as Error
  const { code, reason, message } = apiStatus(error)
  if (code === 401) {
    return new UserError(`the cluster rejected our credentials while trying to ${doing}`, {
      hint: 'Your token or certificate may have expired: log in again or refresh the kubeconfig.',
      exitCode: ExitCode.cluster,
      cause: error,
    })
  }
  if (code === 403) {
    return new UserError(`forbidden: cannot ${doing} in namespace "${cluster.namespace}"${message ? ` (${message})` : ''}`, {
      hint: 'Ask for RBAC rights on pods, pods/exec, pods/portforward, persistentvolumeclaims, secrets and configmaps there, or use -n for a namespace you own.',
      exitCode: ExitCode.forbidden,
      cause: error,
    })
  }
  if (code === 404 && /namespaces? "[^"]+" not found/.test(message ?? '')) {
    return new UserError(`namespace "${cluster.namespace}" does not exist`, {
      hint: 'Create it (kubectl create namespace ...) or pick another with -n.',
      exitCode: ExitCode.notFound,
      cause: error,
    })
  }
  return new UserError(`the cluster refused to ${doing}: ${message ?? reason ?? `HTTP ${code}`}`, {
    exitCode: ExitCode.failure,
    cause: error,
  })
}
