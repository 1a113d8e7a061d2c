// `trampoline pull`: bring home what changed in the pod's /workspace/src since the last
// push. Commits made there arrive as commits (a fast-forward when the local HEAD is still
// the pushed commit, else the branch trampoline/<instance> to merge); uncommitted changes
// (text, binary, new and deleted files) are applied to the local work tree. A file changed
// here since the push, differently, is a conflict: reported by path, and nothing at all is
// written. Afterwards the pod's state counts as pushed, so the next push is not refused.
import { spawn } from 'node:child_process'
import { Writable } from 'node:stream'
import type { CommandModule } from 'yargs'
import { commandContext, findRepoRoot, printResult, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { git, headCommit, presentObjects, requireRepo, worktreeTree } from '../git.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { info, warn } from '../log.ts'
import { podState, recordPush, PUSH_RECEIVE_EXIT } from '../pod/push.ts'
import { captureInPod, runInPod } from '../pod/run.ts'
import { commitsTarget, parseLsTree, planPull } from '../workspace/pull-plan.ts'
import { hasPodChanges, type PodChange } from '../workspace/state.ts'
import { PUSH_RECEIVE, WORKSPACE_SRC } from '../pod/contract.ts'

type PullArgs = GlobalOptions

/** git with a buffer on stdin; never throws for a non-zero exit. */
function gitWithInput(root: string, args: string[], input: Buffer): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn('git', args, { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', fail)
    child.on('close', (code) => done({ code: code ?? 128, stdout, stderr }))
    child.stdin.on('error', () => {})
    child.stdin.end(input)
  })
}

async function gitOrFail(root: string, args: string[], doing: string): Promise<string> {
  const result = await git(root, args)
  if (result.code !== 0) throw new UserError(`${doing} failed: ${result.stderr.trim() || `git exit ${result.code}`}`, { exitCode: ExitCode.local })
  return result.stdout
}

/** The pod's commits base..head into the local object store (a thin pack; only adds objects). */
async function fetchCommits(context: ReturnType<typeof commandContext>, root: string, base: string, head: string): Promise<void> {
  const child = spawn('git', ['index-pack', '--stdin', '--fix-thin'], { cwd: root, stdio: ['pipe', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const indexed = new Promise<number>((done, fail) => {
    child.on('error', fail)
    child.on('close', (code) => done(code ?? 128))
  })
  child.stdin.on('error', () => {})
  const exitCode = await runInPod(context, {
    command: ['sh', '-c', 'printf "%s\\n^%s\\n" "$1" "$2" | git -C "$3" pack-objects --stdout --revs --thin -q', 'trampoline-pull', head, base, WORKSPACE_SRC],
    stdout: child.stdin,
    stderr: process.stderr,
  })
  child.stdin.end()
  const code = await indexed
  if (exitCode !== 0 || code !== 0) {
    throw new UserError(`fetching the pod's commits failed (${exitCode !== 0 ? `pod: exit ${exitCode}` : `git index-pack: ${stderr.trim()}`})`, {
      hint: 'Nothing was changed here. Try again; trampoline diff shows what is waiting.',
      exitCode: ExitCode.failure,
    })
  }
}

/** The pod's patch for these changes (binary-safe), from the pushed tree to its work tree. */
async function podPatch(context: ReturnType<typeof commandContext>, from: string, to: string, changes: PodChange[], all: boolean): Promise<Buffer> {
  const chunks: Buffer[] = []
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk)
      callback()
    },
  })
  const paths = all ? [] : ['--', ...changes.map((change) => change.path)]
  const exitCode = await runInPod(context, {
    command: ['env', 'GIT_LITERAL_PATHSPECS=1', 'git', '-C', WORKSPACE_SRC, 'diff', '--binary', '--full-index', '--no-renames', from, to, ...paths],
    stdout,
    stderr: process.stderr,
  })
  if (exitCode !== 0) throw new UserError(`git diff in the pod failed (exit ${exitCode})`, { exitCode: ExitCode.failure })
  return Buffer.concat(chunks)
}

function listPaths(changes: PodChange[], limit = 20): string {
  const shown = changes.slice(0, limit).map((change) => `    ${change.path}`)
  if (changes.length > limit) shown.push(`    ... and ${changes.length - limit} more`)
  return shown.join('\n')
}

export const command: CommandModule<GlobalOptions, PullArgs> = {
  command: 'pull',
  describe: 'Bring the pod\'s changes home: its commits as commits, its uncommitted edits into the work tree (conflicts reported, never overwritten)',
  builder: (yargs) =>
    yargs.example('$0 pull', 'apply what an agent changed in the pod to this work tree'),
  handler: async (args) => {
    const root = requireRepo(findRepoRoot())
    const context = commandContext(args)
    await requireRunningPod(context)
    const state = await podState(context)
    if (!state.pushed || !state.worktree || !state.commit) {
      throw new UserError(`nothing has been pushed to pod ${context.names.pod} yet, so there is nothing to pull`, {
        hint: 'Push first: trampoline push-tarball --worktree',
        exitCode: ExitCode.notFound,
      })
    }
    if (!hasPodChanges(state)) {
      info('no changes in the pod since the last push: nothing to pull')
      printResult(context, { pulled: false, commits: 0, applied: [], branch: null }, () => '')
      return
    }
    const { pushed, worktree } = state
    const podHead = state.head
    const base = state.base

    // 1. Commits: objects only (nothing visible changes yet).
    const podCommits = !!podHead && !!base && podHead !== base
    const localHead = await headCommit(root)
    let target: ReturnType<typeof commitsTarget> | undefined
    let committedPaths = new Set<string>()
    if (podCommits) {
      if (!(await presentObjects(root, [base])).length) {
        throw new UserError(`the pod's commits build on ${base.slice(0, 12)}, which this repository does not have`, {
          hint: 'Pull from the clone that pushed, or fetch that commit first. Nothing was changed here.',
          exitCode: ExitCode.local,
        })
      }
      await fetchCommits(context, root, base, podHead)
      target = commitsTarget(localHead, base, context.names.instance)
      if (!target.fastForward) {
        // Those paths come through the branch; the work tree gets the rest.
        const listed = await gitOrFail(root, ['diff-tree', '-r', '-z', '--name-only', '--no-renames', base, podHead], 'listing the pod\'s commits')
        committedPaths = new Set(listed.split('\0').filter(Boolean))
      }
    }

    // 2. Uncommitted changes: only where the local file is still as pushed.
    const localTree = await worktreeTree(root)
    const local = parseLsTree(await gitOrFail(root, ['ls-tree', '-r', '-z', '--full-tree', localTree], 'reading the work tree'))
    const wanted = state.changes.filter((change) => !committedPaths.has(change.path))
    const left = state.changes.filter((change) => committedPaths.has(change.path))
    const plan = planPull(wanted, local)
    if (plan.conflicts.length) {
      throw new UserError(`these files changed both here and in the pod since the last push; nothing was changed:\n${listPaths(plan.conflicts)}`, {
        hint: `See the pod's side with: trampoline diff${args.name ? ` --name ${args.name}` : ''}. Commit or stash your changes to those files (git stash), pull, then git stash pop; or overwrite the pod: trampoline push-tarball --worktree --force.`,
        exitCode: ExitCode.podChanges,
      })
    }
    let patch: Buffer | undefined
    if (plan.apply.length) {
      patch = await podPatch(context, pushed, worktree, plan.apply, plan.apply.length === state.changes.length)
      const check = await gitWithInput(root, ['apply', '--check', '--binary', '-'], patch)
      if (check.code !== 0) {
        throw new UserError(`the pod's changes do not apply to this work tree; nothing was changed: ${check.stderr.trim()}`, {
          hint: 'Look at them with trampoline diff, and bring them over by hand (trampoline diff --binary > pod.patch; git apply --3way pod.patch).',
          exitCode: ExitCode.podChanges,
        })
      }
    }

    // 3. Now change things: HEAD (or a branch), then the files.
    let branch: string | undefined
    if (podCommits && target) {
      if (target.fastForward) {
        await gitOrFail(root, ['update-ref', '-m', `trampoline pull from ${context.names.instance}`, 'HEAD', podHead, base], 'fast-forwarding HEAD')
        // The index follows HEAD where it was HEAD's (staged changes elsewhere kept).
        const moved = await git(root, ['read-tree', '-m', base, podHead])
        if (moved.code !== 0) warn(`the index kept its entries (${moved.stderr.trim()}); git status may show the pod's commits as staged reversals: git reset -q fixes that`)
      } else {
        branch = target.branch
        await gitOrFail(root, ['update-ref', '-m', `trampoline pull from ${context.names.instance}`, `refs/heads/${branch}`, podHead], `creating branch ${branch}`)
      }
    }
    if (patch && patch.length) {
      const applied = await gitWithInput(root, ['apply', '--binary', '-'], patch)
      if (applied.code !== 0) throw new UserError(`git apply failed after its check passed: ${applied.stderr.trim()}`, { exitCode: ExitCode.local })
    }

    // 4. The pod's state is now known here: it becomes the pushed state.
    const adopted = await captureInPod(context, [PUSH_RECEIVE, 'adopt', '--tree', worktree, '--head', podHead ?? state.commit])
    if (adopted.exitCode === 0) recordPush(context.state, { tree: worktree, commit: podHead })
    else if (adopted.exitCode === PUSH_RECEIVE_EXIT.podChanges) warn('the pod changed again while pulling: run trampoline pull again')
    else warn(`recording the pull in the pod failed (exit ${adopted.exitCode}): ${adopted.stderr.trim()}`)

    const summary: string[] = []
    if (podCommits) {
      summary.push(branch
        ? `${state.commits} commit${state.commits === 1 ? '' : 's'} from the pod are on branch ${branch} (your HEAD moved since the push): git merge ${branch}`
        : `fast-forwarded to the pod's ${state.commits} commit${state.commits === 1 ? '' : 's'} (HEAD ${podHead.slice(0, 12)})`)
    }
    if (plan.apply.length) summary.push(`applied ${plan.apply.length} file change${plan.apply.length === 1 ? '' : 's'} from the pod to the work tree`)
    if (left.length) summary.push(`left to the branch (changed by the pod's commits too):\n${listPaths(left)}`)
    for (const line of summary) info(line)
    printResult(context, {
      pulled: true,
      commits: podCommits ? state.commits : 0,
      head: podHead ?? null,
      branch: branch ?? null,
      fastForward: !!target?.fastForward,
      applied: plan.apply.map(({ status, path }) => ({ status, path })),
      alreadyHere: plan.same.map(({ path }) => path),
    }, () => '')
  },
}
