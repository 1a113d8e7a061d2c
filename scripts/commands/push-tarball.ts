// `trampoline push-tarball`: the project's git tree into the pod's /workspace/src, as one
// tar stream over exec. HEAD by default (refusing to leave uncommitted work out silently),
// or the work tree with --worktree.
import type { CommandModule } from 'yargs'
import { commandContext, findRepoRoot, printResult, type GlobalOptions } from '../context.ts'
import { pushSource, requireRepo, type PushMode } from '../git.ts'
import { info } from '../log.ts'
import { pushTree } from '../push.ts'

interface PushArgs extends GlobalOptions {
  worktree?: boolean
  head?: boolean
  force?: boolean
}

export function pushMode(args: Pick<PushArgs, 'worktree' | 'head'>): PushMode {
  return args.worktree ? 'worktree' : args.head ? 'head' : 'auto'
}

export const command: CommandModule<GlobalOptions, PushArgs> = {
  command: 'push-tarball',
  describe: 'Push the git tree (HEAD, or the work tree with --worktree) to /workspace/src in the pod',
  builder: (yargs) =>
    yargs
      .option('worktree', { type: 'boolean', describe: 'Push the work tree, uncommitted changes included (.gitignore respected)' })
      .option('head', { type: 'boolean', describe: 'Push HEAD even if the work tree has uncommitted changes' })
      .option('force', { type: 'boolean', describe: 'Send the tree even if the pod already has it' })
      .conflicts('worktree', 'head')
      .example('$0 push-tarball', 'push HEAD (fails if there are uncommitted changes)')
      .example('$0 push-tarball --worktree', 'push exactly what is on disk'),
  handler: async (args) => {
    // Local problems (no repository, uncommitted changes) first: they need no cluster.
    const root = requireRepo(findRepoRoot())
    const source = await pushSource(root, pushMode(args))
    const context = commandContext(args)
    const result = await pushTree(context, root, source, { force: args.force, report: !args.quiet })
    const { tree, bytes, seconds, workspace, skipped } = result
    if (skipped) info(`the pod already has tree ${tree}: nothing sent (--force to send anyway)`)
    // The tree id is the result, so it is printed even with --quiet.
    printResult(context, { tree, bytes, seconds, workspace, skipped }, () => tree)
  },
}
