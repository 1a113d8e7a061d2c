// Sending a git tree into the pod: `git archive` streamed into push-receive.sh over exec,
// with backpressure end to end (git waits for the socket, the socket for the pod), and the
// push remembered locally only once the pod has said it succeeded.
import type { CommandContext } from './context.ts'
import { onInterrupt } from './cleanup.ts'
import { ExitCode, UserError } from './errors.ts'
import { archiveTree, type PushSource } from './git.ts'
import type { ExecSession } from './kube/exec.ts'
import { requireRunningPod } from './kube/pods.ts'
import type { InstanceState } from './state.ts'
import { ByteProgress } from './progress.ts'
import { captureInPod, runInPod } from './remote.ts'
import { LAST_PUSH_FILE, PUSH_RECEIVE, TREES_DIR, WORKSPACE_SRC, isTreeId, treeDir } from './workspace.ts'

export interface PushResult {
  tree: string
  from: PushSource['from']
  bytes: number
  seconds: number
  /** The pod already had this tree: nothing was sent. */
  skipped: boolean
  workspace: string
}

export interface PushOptions {
  /** Send even when the pod already has the tree. */
  force?: boolean
  /** Progress line and summary (push-tarball); the sh adapter pushes silently. */
  report?: boolean
}

export function lastPushed(state: InstanceState): string | undefined {
  const tree = state.read(LAST_PUSH_FILE)?.trim()
  return tree && isTreeId(tree) ? tree : undefined
}

function recordPush(state: InstanceState, tree: string): void {
  state.write(LAST_PUSH_FILE, `${tree}\n`)
}

/** push-receive.sh's exit codes that mean more than "failed" (see its header). */
export const PUSH_RECEIVE_EXIT = {
  /** No space left on the instance's volume (ENOSPC's errno). */
  volumeFull: 28,
  /** Another push held the pod's push lock for the whole bounded wait (EX_TEMPFAIL). */
  busy: 75,
} as const

/** The pod's push lock (a directory naming its holder; push-receive.sh). */
const WORKSPACE_TREES_LOCK = `${TREES_DIR}/.push-lock`

/** The error for push-receive.sh exiting non-zero; its own message is already on stderr. */
export function pushReceiveError(exitCode: number, instance: string, tree: string): UserError {
  const unchanged = `The previous push in ${WORKSPACE_SRC} is unchanged.`
  if (exitCode === PUSH_RECEIVE_EXIT.volumeFull) {
    return new UserError(`the store volume is full: tree ${tree.slice(0, 12)} does not fit on the volume of instance "${instance}" (No space left on device)`, {
      hint: `${unchanged} Free space with: trampoline maintenance --name ${instance}  (garbage-collects the store), ` +
        `or give it a bigger volume: trampoline setup --name ${instance} --store-size <bigger>  (where the StorageClass allows resizing; else trampoline clean, then setup --store-size).`,
      exitCode: ExitCode.failure,
    })
  }
  if (exitCode === PUSH_RECEIVE_EXIT.busy) {
    return new UserError(`another push to instance "${instance}" held the pod's push lock too long; tree ${tree.slice(0, 12)} was not pushed`, {
      hint: `${unchanged} Try again when the other push is done (its message says which process holds ${WORKSPACE_TREES_LOCK}).`,
      exitCode: ExitCode.failure,
    })
  }
  return new UserError(`${PUSH_RECEIVE} in the pod failed with exit code ${exitCode}`, {
    hint: `${unchanged} See the pod's message above.`,
    exitCode: ExitCode.failure,
  })
}

/** A push whose connection to the cluster was lost: say what that means for the workspace. */
function lostPushError(error: UserError): UserError {
  return new UserError(error.message, {
    hint: `${WORKSPACE_SRC} in the pod is the previous tree or this one, never a partial one. When the cluster answers again (trampoline status), push again.`,
    exitCode: error.exitCode,
    cause: error.cause ?? error,
  })
}

/** The tree /workspace/src points at in the pod, if anything was pushed. */
export async function podTree(context: CommandContext): Promise<string | undefined> {
  const { exitCode, stdout } = await captureInPod(context, ['readlink', '-f', WORKSPACE_SRC])
  const target = stdout.trim()
  if (exitCode !== 0 || !target.startsWith(treeDir(''))) return undefined
  const tree = target.slice(treeDir('').length)
  return isTreeId(tree) ? tree : undefined
}

/** Stream one tree into push-receive.sh. Throws unless the pod reported success. */
export async function sendTree(context: CommandContext, root: string, tree: string, report: boolean): Promise<{ bytes: number; seconds: number }> {
  const archive = archiveTree(root, tree)
  let gitError: Error | undefined
  archive.done.catch((error: Error) => (gitError = error))

  const progress = new ByteProgress({ label: 'push', live: report ? undefined : false })
  // Its failure is reported as gitError; without a listener it would crash the process.
  progress.on('error', () => {})
  progress.phase('uploading')
  progress.on('finish', () => progress.phase('unpacking in the pod'))
  // The stream ends only once git has exited cleanly: a failed git archive must not look
  // like a complete tar to the pod, so then we break the connection instead.
  archive.stream.pipe(progress, { end: false })
  archive.done.then(() => progress.end(), (error: Error) => progress.destroy(error))

  let session: ExecSession | undefined
  const unregister = onInterrupt(() => {
    session?.abort()
    archive.kill()
  })
  try {
    const exitCode = await runInPod(context, {
      command: [PUSH_RECEIVE, tree],
      stdin: progress,
      // push-receive.sh prints nothing on success; whatever it says is for the user, and
      // stdout stays clean for --json.
      stdout: process.stderr,
      stderr: process.stderr,
      onOpen: (open) => (session = open),
    }).catch((error) => {
      if (gitError) throw gitError
      throw error instanceof UserError && error.exitCode === ExitCode.cluster ? lostPushError(error) : error
    })
    if (gitError) throw gitError
    if (exitCode !== 0) throw pushReceiveError(exitCode, context.names.instance, tree)
    return progress.finish(report ? 'pushed' : undefined)
  } finally {
    unregister()
    archive.kill()
    progress.finish()
  }
}

/** Push a tree, unless the pod already has it (one cheap probe). */
export async function pushTree(context: CommandContext, root: string, source: PushSource, options: PushOptions = {}): Promise<PushResult> {
  const base = { tree: source.tree, from: source.from, workspace: WORKSPACE_SRC }
  await requireRunningPod(context)
  if (!options.force && (await podTree(context)) === source.tree) {
    recordPush(context.state, source.tree)
    return { ...base, bytes: 0, seconds: 0, skipped: true }
  }
  const { bytes, seconds } = await sendTree(context, root, source.tree, options.report ?? false)
  recordPush(context.state, source.tree)
  return { ...base, bytes, seconds, skipped: false }
}

/**
 * The sh adapter's push before each command: only when the tree changed since the last
 * push. The check is local state, so an unchanged tree costs no round trip.
 */
export async function pushIfChanged(context: CommandContext, root: string, source: PushSource): Promise<PushResult> {
  const base = { tree: source.tree, from: source.from, workspace: WORKSPACE_SRC }
  if (lastPushed(context.state) === source.tree) return { ...base, bytes: 0, seconds: 0, skipped: true }
  await requireRunningPod(context)
  const { bytes, seconds } = await sendTree(context, root, source.tree, false)
  recordPush(context.state, source.tree)
  return { ...base, bytes, seconds, skipped: false }
}
