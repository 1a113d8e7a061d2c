// Reading kubeconfig files the way kubectl (client-go's clientcmd) does, then handing the
// result to client-node: client-node's own loadFromDefault merges KUBECONFIG lists
// differently (the last file's current-context wins, a name in two files is an error,
// token-file is read relative to the working directory), so trampoline would talk to
// another cluster than kubectl. The rules here, from clientcmd's loader:
// - --kubeconfig names one file, which must exist; otherwise $KUBECONFIG is a list
//   (split on ':', empty entries and repeats dropped, missing files skipped); otherwise
//   ~/.kube/config.
// - The first file to define a cluster, user or context name wins, as a whole entry;
//   current-context comes from the first file that sets one.
// - A name defined twice in one file is an error (clientcmd refuses such a file).
// - Relative paths (certificate-authority, client-certificate, client-key, token-file,
//   an exec command containing a slash) resolve against the directory of their file.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path'
import { parse } from 'yaml'
import { ExitCode, UserError } from '../errors.ts'

/** Entries as written in a kubeconfig (the parts trampoline passes on; the rest is kept). */
export type RawCluster = Record<string, any>
export type RawUser = Record<string, any>
export type RawContext = Record<string, any>

export interface KubeconfigFile {
  path: string
  clusters: Array<{ name: string; cluster: RawCluster }>
  users: Array<{ name: string; user: RawUser }>
  contexts: Array<{ name: string; context: RawContext }>
  currentContext?: string
}

/** One entry of the merged view and the file it came from. */
export interface Origin<T> {
  value: T
  file: string
}

export interface MergedKubeconfig {
  /** Files read, in precedence order. */
  files: string[]
  /** Files listed (in $KUBECONFIG) that do not exist, skipped as kubectl does. */
  missing: string[]
  clusters: Map<string, Origin<RawCluster>>
  users: Map<string, Origin<RawUser>>
  contexts: Map<string, Origin<RawContext>>
  currentContext?: Origin<string>
}

export interface KubeconfigSources {
  /** Candidate files in precedence order. */
  files: string[]
  /** Where the list came from, for messages. */
  from: 'flag' | 'env' | 'home'
}

/** Which files kubectl would read, in order. */
export function kubeconfigSources(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, home = homedir()): KubeconfigSources {
  if (explicit) return { files: [explicit], from: 'flag' }
  if (env.KUBECONFIG) {
    const files: string[] = []
    for (const entry of env.KUBECONFIG.split(delimiter)) {
      if (entry && !files.includes(entry)) files.push(entry)
    }
    return { files, from: 'env' }
  }
  return { files: [join(home, '.kube', 'config')], from: 'home' }
}

/** clientcmd's ResolvePaths: relative to the file's directory, absolute paths untouched. */
function resolveAgainst(base: string, value: unknown): unknown {
  return typeof value === 'string' && value !== '' && !isAbsolute(value) ? join(base, value) : value
}

function namedList<K extends string>(document: any, key: string, field: K): Array<{ name: string } & Record<K, Record<string, any>>> {
  const list = document?.[key]
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw new Error(`"${key}" is not a list`)
  const seen = new Set<string>()
  const out: Array<{ name: string } & Record<K, Record<string, any>>> = []
  for (const [i, item] of list.entries()) {
    if (item === null || typeof item !== 'object') throw new Error(`${key}[${i}] is not a mapping`)
    const name = item.name
    if (typeof name !== 'string' || name === '') throw new Error(`${key}[${i}] has no name`)
    if (seen.has(name)) throw new Error(`${key} defines "${name}" twice (kubectl refuses that too)`)
    seen.add(name)
    const body = item[field] ?? {}
    if (typeof body !== 'object' || Array.isArray(body)) throw new Error(`${key}[${i}].${field} is not a mapping`)
    out.push({ name, [field]: { ...body } } as { name: string } & Record<K, Record<string, any>>)
  }
  return out
}

/** Parse one kubeconfig's text; paths in it resolve against `path`'s directory. */
export function parseKubeconfig(text: string, path: string): KubeconfigFile {
  const document = text.trim() === '' ? {} : parse(text, { uniqueKeys: false })
  if (document !== null && document !== undefined && (typeof document !== 'object' || Array.isArray(document))) {
    throw new Error('it is not a YAML mapping')
  }
  const base = resolve(dirname(path))
  const clusters = namedList(document, 'clusters', 'cluster')
  for (const { cluster } of clusters) {
    cluster['certificate-authority'] = resolveAgainst(base, cluster['certificate-authority'])
  }
  const users = namedList(document, 'users', 'user')
  for (const { user } of users) {
    for (const key of ['client-certificate', 'client-key', 'token-file']) user[key] = resolveAgainst(base, user[key])
    // An exec command found on PATH stays as it is; one with a slash is a path.
    if (user.exec && typeof user.exec === 'object') {
      user.exec = { ...user.exec }
      if (typeof user.exec.command === 'string' && user.exec.command.includes('/')) user.exec.command = resolveAgainst(base, user.exec.command)
    }
  }
  const contexts = namedList(document, 'contexts', 'context')
  const current = document?.['current-context']
  return { path, clusters, users, contexts, currentContext: typeof current === 'string' && current !== '' ? current : undefined }
}

/** Merge parsed files in precedence order: the first to define a name (or current-context) wins. */
export function mergeKubeconfigs(files: KubeconfigFile[], missing: string[] = []): MergedKubeconfig {
  const merged: MergedKubeconfig = { files: files.map((f) => f.path), missing, clusters: new Map(), users: new Map(), contexts: new Map() }
  for (const file of files) {
    for (const { name, cluster } of file.clusters) if (!merged.clusters.has(name)) merged.clusters.set(name, { value: cluster, file: file.path })
    for (const { name, user } of file.users) if (!merged.users.has(name)) merged.users.set(name, { value: user, file: file.path })
    for (const { name, context } of file.contexts) if (!merged.contexts.has(name)) merged.contexts.set(name, { value: context, file: file.path })
    if (!merged.currentContext && file.currentContext) merged.currentContext = { value: file.currentContext, file: file.path }
  }
  return merged
}

/**
 * Read and merge the files kubectl would. Undefined when there is nothing to read (no
 * $KUBECONFIG, no ~/.kube/config): the caller decides about in-cluster credentials.
 */
export function readKubeconfigs(sources: KubeconfigSources): MergedKubeconfig | undefined {
  const parsed: KubeconfigFile[] = []
  const missing: string[] = []
  for (const path of sources.files) {
    if (!existsSync(path)) {
      if (sources.from === 'flag') {
        throw new UserError(`the kubeconfig ${path} (from --kubeconfig) does not exist`, { exitCode: ExitCode.cluster })
      }
      missing.push(path)
      continue
    }
    let text: string
    try {
      if (statSync(path).isDirectory()) throw new Error('it is a directory')
      text = readFileSync(path, 'utf8')
    } catch (error) {
      throw new UserError(`cannot read kubeconfig ${path}: ${(error as Error).message}`, { exitCode: ExitCode.cluster, cause: error })
    }
    try {
      parsed.push(parseKubeconfig(text, path))
    } catch (error) {
      throw new UserError(`kubeconfig ${path} is not valid: ${(error as Error).message}`, {
        hint: 'Fix or remove that file (kubectl config view shows what kubectl makes of it).',
        exitCode: ExitCode.cluster,
        cause: error,
      })
    }
  }
  if (parsed.length === 0) {
    if (sources.from === 'env') {
      throw new UserError(`none of the kubeconfig files in $KUBECONFIG exists (${sources.files.join(', ') || 'empty list'})`, {
        hint: 'Point $KUBECONFIG (or --kubeconfig) at your cluster\'s kubeconfig.',
        exitCode: ExitCode.cluster,
      })
    }
    return undefined
  }
  return mergeKubeconfigs(parsed, missing)
}

/** "FILE" or "FILE1, FILE2": where we looked, for messages. */
export function describeFiles(merged: Pick<MergedKubeconfig, 'files'>): string {
  return merged.files.join(', ')
}

function known(names: Iterable<string>): string {
  const list = [...names]
  return list.length ? list.join(', ') : 'none'
}

export interface Selection {
  contextName: string
  context: RawContext
  clusterName: string
  cluster: RawCluster
  userName?: string
  user?: RawUser
}

/**
 * The context kubectl would use (--context, else current-context) with its cluster and
 * user, or a UserError naming what is missing and where we looked.
 */
export function selectContext(merged: MergedKubeconfig, requested?: string): Selection {
  const where = describeFiles(merged)
  const name = requested ?? merged.currentContext?.value
  if (!name) {
    throw new UserError(`the kubeconfig (${where}) sets no current-context`, {
      hint: `Pick one with --context (known: ${known(merged.contexts.keys())}), or set one: kubectl config use-context NAME.`,
      exitCode: ExitCode.cluster,
    })
  }
  const context = merged.contexts.get(name)
  if (!context) {
    const origin = requested ? 'from --context' : `current-context in ${merged.currentContext!.file}`
    throw new UserError(`context "${name}" (${origin}) is not defined in ${where} (known contexts: ${known(merged.contexts.keys())})`, {
      hint: requested
        ? 'Pass one of the known contexts, or check $KUBECONFIG lists the file that defines it.'
        : 'Pick an existing one with --context or kubectl config use-context NAME, or add the file that defines it to $KUBECONFIG.',
      exitCode: requested ? ExitCode.usage : ExitCode.cluster,
    })
  }
  const clusterName = context.value.cluster
  if (typeof clusterName !== 'string' || clusterName === '') {
    throw new UserError(`context "${name}" (in ${context.file}) names no cluster`, { exitCode: ExitCode.cluster })
  }
  const cluster = merged.clusters.get(clusterName)
  if (!cluster) {
    throw new UserError(`cluster "${clusterName}" of context "${name}" is not defined in ${where} (known clusters: ${known(merged.clusters.keys())})`, {
      exitCode: ExitCode.cluster,
    })
  }
  if (typeof cluster.value.server !== 'string' || cluster.value.server === '') {
    throw new UserError(`cluster "${clusterName}" (in ${cluster.file}) has no server`, { exitCode: ExitCode.cluster })
  }
  const userName = typeof context.value.user === 'string' && context.value.user !== '' ? context.value.user : undefined
  const user = userName === undefined ? undefined : merged.users.get(userName)
  if (userName !== undefined && !user) {
    throw new UserError(`user "${userName}" of context "${name}" is not defined in ${where} (known users: ${known(merged.users.keys())})`, {
      exitCode: ExitCode.cluster,
    })
  }
  return { contextName: name, context: context.value, clusterName, cluster: cluster.value, userName, user: user?.value }
}
