// Loading a kubeconfig and turning client-node failures into errors a person can act on.
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import type { ApiException, CoreV1Api, KubeConfig, NetworkingV1Api, Cluster as KcCluster, Context as KcContext, User as KcUser } from '@kubernetes/client-node'
// Not exported from the package index; part of client-node 2.0.1's dist (no "exports"
// map), and the exec tests in client.test.ts fail if that ever changes.
import type { Authenticator } from '@kubernetes/client-node/dist/auth.js'
import { ExitCode, UserError } from '../errors.ts'
import { kubeconfigSources, readKubeconfigs, selectContext, type MergedKubeconfig, type RawCluster, type RawUser, type Selection } from './kubeconfig.ts'

type ClientNode = typeof import('./client-node.ts')

let clientNodeModule: ClientNode | undefined

/**
 * @kubernetes/client-node (the parts client.ts uses), loaded on first use. Loading it
 * costs ~0.15 s of CPU (its generated API classes pull in all ~900 models), which a
 * command that only reads the kubeconfig and talks to the local mux helper (scripts/mux/)
 * never pays. `require` is esbuild's in the bundle (which then evaluates the bundled
 * modules only here) and Node's require(esm) when running the TypeScript sources.
 */
export function clientNode(): ClientNode {
  if (!clientNodeModule) {
    clientNodeModule = (typeof require === 'function' ? require('./client-node.ts') : createRequire(import.meta.url)('./client-node.ts')) as ClientNode
  }
  return clientNodeModule
}

/** An ApiException from client-node, without loading client-node to find out that it is not. */
function isApiException(error: unknown): error is ApiException<unknown> {
  if (!clientNodeModule && (error as { constructor?: { name?: string } } | null)?.constructor?.name !== 'ApiException') return false
  return error instanceof clientNode().ApiException
}

export interface ClusterOptions {
  kubeconfig?: string
  context?: string
  namespace?: string
}

export interface Cluster {
  /** client-node's objects: each loads client-node when first read. */
  readonly kc: KubeConfig
  readonly core: CoreV1Api
  readonly networking: NetworkingV1Api
  namespace: string
  context: string
  server: string
  /** The kubeconfig entries in use (undefined in a pod's service account): the mux helper's key. */
  selection?: Selection
  /** The kubeconfig files read, in precedence order (what the mux helper is started with). */
  kubeconfigFiles?: string[]
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token'

/**
 * client-node runs exec credential plugins (aws, gke-gcloud-auth-plugin, kubelogin...)
 * in ExecAuth.getCredential, called from KubeConfig.applySecurityAuthentication (every
 * REST call and Watch) and applyToHTTPSOptions (exec and port-forward websockets), before
 * any request goes out. Its failures are bare Errors (the plugin's stderr as message, a
 * spawn ENOENT, a JSON SyntaxError). Users with an exec section reach client-node under
 * this auth-provider name instead, so that this authenticator runs the plugin (with
 * client-node's ExecAuth) and says what went wrong.
 */
const EXEC_PROVIDER = 'trampoline-exec'

interface ExecConfig {
  command?: string
  args?: string[]
  env?: Array<{ name: string; value: string }>
  apiVersion?: string
  installHint?: string
}

const LOGIN_HINT =
  'The plugin gets your cluster credentials: if your login expired, log in again with your provider\'s CLI (e.g. aws sso login, gcloud auth login, az login, kubelogin), then check that kubectl get pods works.'

function lastLines(text: string, lines = 15, chars = 2000): string {
  const kept = text.trim().split('\n').slice(-lines).join('\n')
  return kept.length > chars ? `...${kept.slice(-chars)}` : kept
}

/** A failed exec credential plugin, as a UserError (exit 3) with the plugin's own words. */
export function execPluginError(error: unknown, exec: ExecConfig, userName: string): UserError {
  const command = exec.command ?? ''
  const plugin = `the credential plugin "${command}" of kubeconfig user "${userName}"`
  const e = error as NodeJS.ErrnoException
  if (error instanceof UserError) return error
  if (typeof e?.syscall === 'string' && e.syscall.startsWith('spawn')) {
    if (e.code === 'ENOENT') {
      return new UserError(`${plugin} is not installed (${command.includes('/') ? 'no such file' : 'not found on PATH'})`, {
        hint: exec.installHint?.trim() || `Install it (kubectl needs it too), or fix the exec command of user "${userName}" in the kubeconfig.`,
        exitCode: ExitCode.cluster,
        cause: error,
      })
    }
    return new UserError(`${plugin} cannot be run: ${e.message}`, {
      hint: `Check that ${command} is an executable file.`,
      exitCode: ExitCode.cluster,
      cause: error,
    })
  }
  if (error instanceof SyntaxError || error instanceof TypeError) {
    // JSON.parse of its stdout, or JSON without a status.
    return new UserError(`${plugin} printed no valid ExecCredential (${e.message})`, {
      hint: `Run ${command} by hand to see what it prints; kubectl would fail the same way.`,
      exitCode: ExitCode.cluster,
      cause: error,
    })
  }
  // A non-zero exit: client-node rejects with the plugin's stderr as the message.
  const said = lastLines(String(e?.message ?? ''))
  return new UserError(`${plugin} failed${said ? `:\n    ${said.split('\n').join('\n    ')}` : ' without saying why'}`, {
    hint: LOGIN_HINT,
    exitCode: ExitCode.cluster,
    cause: error,
  })
}

class ExecPluginAuth implements Authenticator {
  private readonly inner = new (clientNode().ExecAuth)()

  isAuthProvider(user: KcUser): boolean {
    return user?.authProvider?.name === EXEC_PROVIDER
  }

  async applyAuthentication(user: KcUser, opts: Parameters<Authenticator['applyAuthentication']>[1]): Promise<void> {
    const exec: ExecConfig = user.authProvider.config.plugin
    try {
      await this.inner.applyAuthentication({ name: user.name, exec } as KcUser, opts as any)
    } catch (error) {
      throw execPluginError(error, exec, user.name)
    }
  }
}

/**
 * A KubeConfig whose credential failures (a certificate file that went away, an
 * auth-provider that throws) are UserErrors naming the context, not internal errors.
 */
let explainingKubeConfig: (new () => KubeConfig) | undefined

function explainingKubeConfigClass(): new () => KubeConfig {
  if (explainingKubeConfig) return explainingKubeConfig
  const { KubeConfig } = clientNode()
  class ExplainingKubeConfig extends KubeConfig {
    override async applySecurityAuthentication(context: Parameters<InstanceType<ClientNode['KubeConfig']>['applySecurityAuthentication']>[0]): Promise<void> {
      try {
        await super.applySecurityAuthentication(context)
      } catch (error) {
        throw this.credentialError(error)
      }
    }

    override async applyToHTTPSOptions(opts: Parameters<InstanceType<ClientNode['KubeConfig']>['applyToHTTPSOptions']>[0]): Promise<void> {
      try {
        await super.applyToHTTPSOptions(opts)
      } catch (error) {
        throw this.credentialError(error)
      }
    }

    private credentialError(error: unknown): Error {
      if (error instanceof UserError) return error
      const e = error as NodeJS.ErrnoException
      const context = this.getCurrentContext()
      if (typeof e?.path === 'string' && e.syscall === 'open') {
        return new UserError(`cannot read ${e.path}, named by context "${context}" of the kubeconfig (${e.code})`, {
          hint: 'Fix the path in the kubeconfig, or get a fresh kubeconfig from your cluster\'s provider.',
          exitCode: ExitCode.cluster,
          cause: error,
        })
      }
      return new UserError(`cannot use the credentials of context "${context}": ${e?.message ?? String(error)}`, {
        hint: 'Check the user entry of that context in the kubeconfig (kubectl config view --minify).',
        exitCode: ExitCode.cluster,
        cause: error,
      })
    }
  }
  return (explainingKubeConfig = ExplainingKubeConfig)
}

function clientNodeCluster(name: string, raw: RawCluster): KcCluster {
  return {
    name,
    server: typeof raw.server === 'string' ? raw.server.replace(/\/$/, '') : '',
    caData: raw['certificate-authority-data'],
    caFile: raw['certificate-authority'],
    skipTLSVerify: raw['insecure-skip-tls-verify'] === true,
    tlsServerName: raw['tls-server-name'],
    proxyUrl: raw['proxy-url'],
  }
}

/** What client-go hands an exec plugin in $KUBERNETES_EXEC_INFO (non-interactive: stdin is not the terminal). */
function execInfo(exec: ExecConfig, cluster: RawCluster | undefined, provideClusterInfo: boolean): string {
  const spec: Record<string, unknown> = { interactive: false }
  if (provideClusterInfo && cluster) {
    let caData = cluster['certificate-authority-data']
    if (!caData && cluster['certificate-authority']) {
      try {
        caData = readFileSync(cluster['certificate-authority']).toString('base64')
      } catch {
        caData = undefined
      }
    }
    spec.cluster = {
      server: cluster.server,
      'tls-server-name': cluster['tls-server-name'],
      'insecure-skip-tls-verify': cluster['insecure-skip-tls-verify'],
      'certificate-authority-data': caData,
      'proxy-url': cluster['proxy-url'],
      config: (cluster.extensions as Array<{ name: string; extension: unknown }> | undefined)?.find((x) => x?.name === 'client.authentication.k8s.io/exec')?.extension,
    }
  }
  return JSON.stringify({ apiVersion: exec.apiVersion ?? 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', spec })
}

/**
 * One kubeconfig user as client-node wants it. Only the selected user reads files
 * (token-file) or gets cluster info: the others are there to be listed.
 */
function clientNodeUser(name: string, raw: RawUser, selected?: { cluster: RawCluster }): KcUser {
  let token: string | undefined = typeof raw.token === 'string' && raw.token !== '' ? raw.token : undefined
  if (!token && selected && typeof raw['token-file'] === 'string' && raw['token-file'] !== '') {
    try {
      token = readFileSync(raw['token-file'], 'utf8').trim()
    } catch (error) {
      throw new UserError(`cannot read the token-file of kubeconfig user "${name}": ${(error as Error).message}`, { exitCode: ExitCode.cluster, cause: error })
    }
  }
  let authProvider = raw['auth-provider'] ?? undefined
  if (raw.exec && typeof raw.exec === 'object') {
    const exec: ExecConfig = { ...raw.exec }
    if (selected && (typeof exec.command !== 'string' || exec.command === '')) {
      throw new UserError(`kubeconfig user "${name}" has an exec section without a command`, { exitCode: ExitCode.cluster })
    }
    if (selected && !(exec.env ?? []).some((e) => e?.name === 'KUBERNETES_EXEC_INFO')) {
      exec.env = [...(exec.env ?? []), { name: 'KUBERNETES_EXEC_INFO', value: execInfo(exec, selected.cluster, raw.exec.provideClusterInfo === true) }]
    }
    authProvider = { name: EXEC_PROVIDER, config: { plugin: exec } }
  }
  return {
    name,
    certData: raw['client-certificate-data'],
    certFile: raw['client-certificate'],
    keyData: raw['client-key-data'],
    keyFile: raw['client-key'],
    token,
    username: raw.username,
    password: raw.password,
    impersonateUser: raw.as,
    authProvider,
  }
}

/** The merged kubeconfig, with `selection` current, as client-node's loadFromOptions takes it. */
export function clientNodeOptions(merged: MergedKubeconfig, selection: Selection): { clusters: KcCluster[]; users: KcUser[]; contexts: KcContext[]; currentContext: string } {
  return {
    clusters: [...merged.clusters].map(([name, { value }]) => clientNodeCluster(name, value)),
    users: [...merged.users].map(([name, { value }]) => clientNodeUser(name, value, name === selection.userName ? { cluster: selection.cluster } : undefined)),
    contexts: [...merged.contexts].map(([name, { value }]) => ({
      name,
      cluster: value.cluster,
      user: value.user || undefined,
      namespace: value.namespace || undefined,
    }) as KcContext),
    currentContext: selection.contextName,
  }
}

function newKubeConfig(): KubeConfig {
  const kc = new (explainingKubeConfigClass())()
  kc.addAuthenticator(new ExecPluginAuth())
  return kc
}

/**
 * The kubeconfig kubectl would use (see kubeconfig.ts for its rules), loaded into
 * client-node; in a pod without one, the service account.
 */
export function loadKubeConfig(options: ClusterOptions, env: NodeJS.ProcessEnv = process.env, home = homedir()): KubeConfig {
  const merged = readKubeconfigs(kubeconfigSources(options.kubeconfig, env, home))
  if (!merged) return inClusterKubeConfig(options)
  return kubeConfigFrom(merged, selectContext(merged, options.context))
}

function inClusterKubeConfig(options: ClusterOptions): KubeConfig {
  if (existsSync(IN_CLUSTER_TOKEN) && !options.context) {
    const kc = newKubeConfig()
    kc.loadFromCluster()
    return kc
  }
  // client-node's loadFromDefault would silently target http://localhost:8080, which
  // then looks like an unreachable cluster. Say what is really wrong instead.
  throw new UserError('no kubeconfig found (no $KUBECONFIG, no ~/.kube/config)', {
    hint: 'Point --kubeconfig or $KUBECONFIG at your cluster\'s kubeconfig, or start a local one (minikube start).',
    exitCode: ExitCode.cluster,
  })
}

function kubeConfigFrom(merged: MergedKubeconfig, selection: Selection): KubeConfig {
  const kc = newKubeConfig()
  kc.loadFromOptions(clientNodeOptions(merged, selection))
  return kc
}

/**
 * The cluster a command talks to. Context, namespace and server come from the kubeconfig
 * files alone; client-node (kc, core, networking) loads when one of them is first read,
 * so a command that never calls the API itself (shell and sh through the mux helper)
 * never loads it. Kubeconfig problems kubectl would also refuse (no such context, no
 * server) still fail here, at once.
 */
export function connect(options: ClusterOptions): Cluster {
  // $TRAMPOLINE_NAMESPACE: for callers that cannot pass flags (an agent's CLAUDE_CODE_SHELL).
  const namespaceFrom = (contextNamespace: string | undefined) =>
    options.namespace ?? (process.env.TRAMPOLINE_NAMESPACE || undefined) ?? contextNamespace ?? 'default'
  const merged = readKubeconfigs(kubeconfigSources(options.kubeconfig, process.env, homedir()))
  if (!merged) {
    const kc = inClusterKubeConfig(options)
    const context = kc.getCurrentContext()
    const core = kc.makeApiClient(clientNode().CoreV1Api)
    const networking = kc.makeApiClient(clientNode().NetworkingV1Api)
    return { kc, core, networking, namespace: namespaceFrom(kc.getContextObject(context)?.namespace), context, server: kc.getCurrentCluster()!.server }
  }
  const selection = selectContext(merged, options.context)
  let kc: KubeConfig | undefined
  let core: CoreV1Api | undefined
  let networking: NetworkingV1Api | undefined
  const loaded = () => (kc ??= kubeConfigFrom(merged, selection))
  const contextNamespace = typeof selection.context.namespace === 'string' && selection.context.namespace !== '' ? selection.context.namespace : undefined
  return {
    get kc() {
      return loaded()
    },
    get core() {
      return (core ??= loaded().makeApiClient(clientNode().CoreV1Api))
    },
    get networking() {
      return (networking ??= loaded().makeApiClient(clientNode().NetworkingV1Api))
    },
    namespace: namespaceFrom(contextNamespace),
    context: selection.contextName,
    server: String(selection.cluster.server).replace(/\/$/, ''),
    selection,
    kubeconfigFiles: merged.files,
  }
}

/** Status reason and message from an ApiException body (a raw JSON string in client-node 2.x). */
export function apiStatus(error: unknown): { code?: number; reason?: string; message?: string } {
  if (!isApiException(error)) return {}
  let body: { reason?: string; message?: string } = {}
  try {
    body = typeof error.body === 'string' ? JSON.parse(error.body) : (error.body ?? {})
  } catch {
    body = { message: String(error.body) }
  }
  return { code: error.code, reason: body.reason, message: body.message }
}

export function isNotFound(error: unknown): boolean {
  return isApiException(error) && error.code === 404
}

export function isConflict(error: unknown): boolean {
  return isApiException(error) && error.code === 409
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

/** The resources container/rbac.yaml grants, for hints. */
export const RBAC_SUMMARY = 'pods, pods/exec, pods/portforward, pods/log, persistentvolumeclaims, secrets, configmaps, networkpolicies, events'

/**
 * The right an RBAC denial names: the authorizer says `User "bob" cannot create resource
 * "pods/exec" in API group "" in the namespace "x"` (or `at the cluster scope`).
 */
export function forbiddenRight(message: string | undefined): { verb: string; resource: string; group: string } | undefined {
  const match = /cannot (\S+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(message ?? '')
  return match ? { verb: match[1], resource: match[2], group: match[3] ?? '' } : undefined
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
  if (!isApiException(error)) return error as Error
  const { code, reason, message } = apiStatus(error)
  if (code === 401) {
    return new UserError(`the cluster rejected our credentials while trying to ${doing}`, {
      hint: 'Your token or certificate may have expired: log in again or refresh the kubeconfig.',
      exitCode: ExitCode.cluster,
      cause: error,
    })
  }
  // Admission, not RBAC, also answers 403: Pod Security and ResourceQuota.
  if (code === 403 && /violates PodSecurity/.test(message ?? '')) {
    return new UserError(`namespace "${cluster.namespace}" does not allow the pod: ${message}`, {
      hint: `The nix-daemon container must run privileged. Ask your cluster admin to allow it (kubectl label namespace ${cluster.namespace} pod-security.kubernetes.io/enforce=privileged --overwrite), or use -n with a namespace that does.`,
      exitCode: ExitCode.podFailed,
      cause: error,
    })
  }
  if (code === 403 && /exceeded quota/.test(message ?? '')) {
    return new UserError(`a ResourceQuota in namespace "${cluster.namespace}" leaves no room to ${doing}: ${message}`, {
      hint: 'Ask for less (setup --cpu, --memory, --store-size), free quota in the namespace, or ask your cluster admin for more.',
      exitCode: ExitCode.podFailed,
      cause: error,
    })
  }
  if (code === 403) {
    const denied = forbiddenRight(message)
    const right = denied ? `"${denied.verb}" on ${denied.resource}${denied.group ? ` (API group ${denied.group})` : ''}` : undefined
    return new UserError(`forbidden: cannot ${doing} in namespace "${cluster.namespace}"${message ? ` (${message})` : ''}`, {
      hint: `${right ? `The missing RBAC right: ${right}. ` : ''}container/rbac.yaml is a Role with every right trampoline needs (${RBAC_SUMMARY}): ask your cluster admin to bind it to you in namespace "${cluster.namespace}" (trampoline doctor lists what is missing), or use -n for a namespace you own.`,
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
