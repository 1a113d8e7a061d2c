// `trampoline diff`: what changed in the pod's /workspace/src since the last push (an
// agent's edits, new files, deletions, and commits), as git shows it: `git diff` from the
// pushed tree to the pod's work tree, after the list of the pod's own commits.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { info } from '../log.ts'
import { podState } from '../pod/push.ts'
import { runInPod } from '../pod/run.ts'
import { hasPodChanges } from '../workspace/state.ts'
import { WORKSPACE_SRC } from '../pod/contract.ts'

interface DiffArgs extends GlobalOptions {
  stat?: boolean
  'name-only'?: boolean
  'name-status'?: boolean
  binary?: boolean
}

/** git diff's options for the chosen format (one of them; the full patch otherwise). */
export function diffFormat(args: Pick<DiffArgs, 'stat' | 'name-only' | 'name-status' | 'binary'>): string[] {
  if (args['name-only']) return ['--name-only']
  if (args['name-status']) return ['--name-status', '--no-renames']
  if (args.stat) return ['--stat']
  return args.binary ? ['--binary', '--full-index'] : []
}

/** The command run in the pod: its commits since the push, then the diff (no pager, no color unless asked). */
export function podDiffArgv(range: { pushed: string; worktree: string; base?: string; head?: string }, format: string[], color: boolean): string[] {
  const git = ['git', '-C', WORKSPACE_SRC, '-c', `color.ui=${color ? 'always' : 'never'}`, '-c', 'core.quotePath=false']
  const script = range.base && range.head && range.base !== range.head
    ? '"$@" log --format="commit %H%n  %an <%ae>  %ad%n%n    %s%n" "$BASE..$HEAD" -- && "$@" diff "$PUSHED" "$WORK" $FORMAT'
    : '"$@" diff "$PUSHED" "$WORK" $FORMAT'
  // Values travel as arguments, never inside the script text.
  return ['env', `BASE=${range.base ?? ''}`, `HEAD=${range.head ?? ''}`, `PUSHED=${range.pushed}`, `WORK=${range.worktree}`, `FORMAT=${format.join(' ')}`, 'sh', '-c', script, 'trampoline-diff', ...git]
}

export const command: CommandModule<GlobalOptions, DiffArgs> = {
  command: 'diff',
  describe: 'Show what changed in the pod\'s /workspace/src since the last push (edits, new and deleted files, commits)',
  builder: (yargs) =>
    yargs
      .option('stat', { type: 'boolean', describe: 'A diffstat instead of the patch' })
      .option('name-only', { type: 'boolean', describe: 'Only the changed paths' })
      .option('name-status', { type: 'boolean', describe: 'The changed paths with A/M/D' })
      .option('binary', { type: 'boolean', describe: 'A patch git apply takes, binary files included' })
      .conflicts('stat', ['name-only', 'name-status'])
      .conflicts('name-only', 'name-status')
      .example('$0 diff', 'the pod\'s changes as a patch')
      .example('$0 diff --stat', 'which files, how much'),
  handler: async (args) => {
    const context = commandContext(args)
    await requireRunningPod(context)
    const state = await podState(context)
    if (!state.pushed || !state.worktree) {
      throw new UserError(`nothing has been pushed to pod ${context.names.pod} yet, so there is nothing to compare`, {
        hint: 'Push first: trampoline push-tarball --worktree',
        exitCode: ExitCode.notFound,
      })
    }
    if (context.json) {
      printResult(context, {
        changed: hasPodChanges(state),
        pushed: state.pushed,
        worktree: state.worktree,
        base: state.base ?? null,
        head: state.head ?? null,
        commits: state.commits,
        changes: state.changes.map(({ status, path }) => ({ status, path })),
      }, () => '')
      return
    }
    if (!hasPodChanges(state)) {
      info(`no changes in the pod since the last push (tree ${state.pushed.slice(0, 12)})`)
      return
    }
    const color = !!process.stdout.isTTY && !process.env.NO_COLOR
    const exitCode = await runInPod(context, {
      command: podDiffArgv({ pushed: state.pushed, worktree: state.worktree, base: state.base, head: state.head }, diffFormat(args), color),
      stdout: process.stdout,
      stderr: process.stderr,
    })
    if (exitCode !== 0) throw new UserError(`git diff in the pod failed (exit ${exitCode})`, { exitCode: ExitCode.failure })
  },
}
