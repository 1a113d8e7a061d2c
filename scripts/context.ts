// What every subcommand needs, resolved once from the global options: the cluster
// connection, the instance's object names, its local state, and where the project is.
import { connect, type Cluster } from './kube/client.ts'
import { ExitCode, UserError } from './errors.ts'
import { defaultInstanceName, defaultOwner, labelsFor, namesFor, validateInstanceName, type InstanceNames } from './instance.ts'
import { InstanceState, instanceStateDir } from './state.ts'
import { findRepoRoot } from './git.ts'

export { findRepoRoot }

export interface GlobalOptions {
  kubeconfig?: string
  context?: string
  namespace?: string
  name?: string
  json?: boolean
  verbose?: boolean
  quiet?: boolean
}

export interface CommandContext {
  cluster: Cluster
  names: InstanceNames
  labels: Record<string, string>
  owner: string
  state: InstanceState
  /** The git work tree the command runs from, if any. */
  repoRoot?: string
  json: boolean
}


export function resolveInstanceName(options: GlobalOptions, repoRoot: string | undefined): string {
  const name = options.name ?? process.env.TRAMPOLINE_NAME ?? defaultInstanceName(repoRoot)
  const problem = validateInstanceName(name)
  if (problem) throw new UserError(problem, { hint: 'Pick another with --name.', exitCode: ExitCode.usage })
  return name
}

export function commandContext(options: GlobalOptions): CommandContext {
  const repoRoot = findRepoRoot()
  const instance = resolveInstanceName(options, repoRoot)
  const cluster = connect(options)
  const owner = defaultOwner()
  return {
    cluster,
    names: namesFor(instance),
    labels: labelsFor(instance, owner),
    owner,
    state: new InstanceState(instanceStateDir(cluster.context, cluster.namespace, instance)),
    repoRoot,
    json: options.json ?? false,
  }
}

/** Print a result: JSON on stdout with --json, otherwise the human lines. */
export function printResult(context: Pick<CommandContext, 'json'>, value: unknown, human: () => string): void {
  if (context.json) process.stdout.write(`${JSON.stringify(value)}\n`)
  else {
    const text = human()
    if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
  }
}
