// `trampoline build`: nix build in the pod, in the pushed tree. Logs stream live to stderr,
// the result store paths go to stdout, every result is GC-rooted in the pod, and nix's exit
// code is ours. It builds what was pushed: it warns when that is not the local tree.
import type { CommandModule } from 'yargs'
import { Writable } from 'node:stream'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { ExitCode, RemoteExit, UserError } from '../errors.ts'
import { localTrees } from '../git.ts'
import { requireRunningPod } from '../kube/pods.ts'
import { info, warn } from '../log.ts'
import { nixBuildArgv, gcRootName, parseBuildOutputs, type BuildRequest } from '../build-args.ts'
import { podTree } from '../push.ts'
import { runInPod } from '../remote.ts'
import { GC_ROOTS_DIR, WORKSPACE_SRC } from '../workspace.ts'

interface BuildArgs extends GlobalOptions {
  file?: string
  installables?: string[]
  '--'?: string[]
}

/** nix build --json prints one line; a cap keeps a misbehaving build from filling memory. */
const MAX_STDOUT = 16 * 1024 * 1024

export function buildRequest(args: Pick<BuildArgs, 'file' | 'installables' | '--'>): BuildRequest {
  return { file: args.file, installables: (args.installables ?? []).map(String), passthrough: (args['--'] ?? []).map(String) }
}

/** Say so when the pod's tree is neither local HEAD nor the work tree: the build will not see it. */
function warnIfStale(pushed: string, local: string[]): void {
  if (local.length > 0 && !local.includes(pushed)) {
    warn(`the pod builds tree ${pushed.slice(0, 12)} (the last push); your local tree differs. Run trampoline push-tarball [--worktree] to build your changes.`)
  }
}

export const command: CommandModule<GlobalOptions, BuildArgs> = {
  command: 'build [installables..]',
  describe: 'nix build in the pod, in the pushed tree; prints result paths and keeps them GC-rooted',
  builder: (yargs) =>
    yargs
      .positional('installables', { type: 'string', array: true, describe: 'Flake outputs (default: .), or attributes with -f' })
      .option('file', { alias: 'f', type: 'string', describe: 'Build from a Nix file (relative to the pushed tree) instead of a flake' })
      // Everything after `--` goes to nix build untouched.
      .parserConfiguration({ 'populate--': true })
      .example('$0 build', 'build the flake\'s default package')
      .example('$0 build .#tests -- -L', 'build with full logs')
      .example('$0 build -f default.nix hello', 'build an attribute of a Nix file'),
  handler: async (args) => {
    const context = commandContext(args)
    const request = buildRequest(args)
    await requireRunningPod(context)
    const [pushed, local] = await Promise.all([podTree(context), context.repoRoot ? localTrees(context.repoRoot) : []])
    if (!pushed) {
      throw new UserError(`nothing has been pushed to pod ${context.names.pod} yet, so there is nothing to build`, {
        hint: 'Run: trampoline push-tarball  (or push-tarball --worktree for uncommitted changes)',
        exitCode: ExitCode.notFound,
      })
    }
    warnIfStale(pushed, local)

    const chunks: Buffer[] = []
    let size = 0
    const stdout = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        if ((size += chunk.length) <= MAX_STDOUT) chunks.push(chunk)
        callback()
      },
    })
    const exitCode = await runInPod(context, {
      // exec has no working directory: a tiny sh wrapper cds first.
      command: ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'trampoline-build', WORKSPACE_SRC, ...nixBuildArgv(request)],
      stdout,
      stderr: process.stderr,
    })
    const outputs = exitCode === 0 ? parseBuildOutputs(Buffer.concat(chunks).toString('utf8')) : []
    printResult(context, { exitCode, outputs }, () => outputs.join('\n'))
    if (exitCode !== 0) throw new RemoteExit(exitCode)
    if (outputs.length) info(`GC roots: ${GC_ROOTS_DIR}/${gcRootName(request)}*`)
  },
}
