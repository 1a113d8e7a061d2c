// `trampoline push-tarball`: the project's git tree into the pod's /workspace/src (a git
// work tree there), sending only the objects the pod lacks. HEAD by default (refusing to
// leave uncommitted work out silently), or the work tree with --worktree. Refuses to
// overwrite changes made in the pod since the last push, unless --force.
import type { CommandModule } from 'yargs'
import { commandContext, findRepoRoot, printResult, type GlobalOptions } from '../context.ts'
import { gitIdentity, pushSource, requireRepo, warnAboutLfs, type PushMode } from '../git.ts'
import { info } from '../log.ts'
import { pushTree } from '../pod/push.ts'

interface PushArgs extends GlobalOptions {
  worktree?: boolean
  head?: boolean
  force?: boolean
  'git-name'?: string
  'git-email'?: string
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
      .option('force', { type: 'boolean', describe: 'Send the tree even if the pod already has it, overwriting changes made in the pod (see trampoline diff)' })
      .option('git-name', { type: 'string', describe: 'Author name for commits in the pod (default: git config user.name)' })
      .option('git-email', { type: 'string', describe: 'Author email for commits in the pod (default: git config user.email)' })
      .conflicts('worktree', 'head')
      .example('$0 push-tarball', 'push HEAD (fails if there are uncommitted changes)')
      .example('$0 push-tarball --worktree', 'push exactly what is on disk'),
  handler: async (args) => {
    // Local problems (no repository, uncommitted changes) first: they need no cluster.
    const root = requireRepo(findRepoRoot())
    const source = await pushSource(root, pushMode(args))
    // Looked for meanwhile; said before the push's summary.
    const lfsWarning = warnAboutLfs(root, source.tree)
    const context = commandContext(args)
    const local = await gitIdentity(root)
    const identity = { name: args['git-name'] ?? local.name, email: args['git-email'] ?? local.email }
    const result = await pushTree(context, root, source, { force: args.force, report: !args.quiet, identity })
    await lfsWarning
    const { tree, commit, bytes, objects, seconds, workspace, skipped } = result
    if (skipped) info(`the pod already has tree ${tree}: nothing sent (--force to send anyway)`)
    // The tree id is the result, so it is printed even with --quiet.
    printResult(context, { tree, commit: commit ?? null, bytes, objects, seconds, workspace, skipped }, () => tree)
  },
}
