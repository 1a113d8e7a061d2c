// Sending the project into the pod's workspace (/workspace/src, a git work tree): only the
// git objects the pod lacks travel, as one `git pack-objects` stream into push-receive.sh
// over exec, with backpressure end to end; the pod updates the files that changed with
// git itself. The push is remembered locally only once the pod has said it succeeded.
import { Writable } from 'node:stream'
import type { CommandContext } from '../context.ts'
import { onInterrupt } from '../cleanup.ts'
import { ExitCode, UserError } from '../errors.ts'
import { gitIdentity, currentBranch, type PushSource } from '../git.ts'
import type { ExecSession } from '../kube/exec.ts'
import { requireRunningPod } from './pods.ts'
import { ByteProgress } from '../progress.ts'
import { captureInPod, runInPod } from './run.ts'
import { isTreeId } from '../workspace.ts'
import { PUSH_RECEIVE, WORKSPACE_SRC } from './contract.ts'
import { packFor, prepareFramed, settleFramed, type PodHolds, type ShRun } from '../workspace/framed.ts'
import { PUSH_RECEIVE_EXIT, podChangesError, pushReceiveError, receiveArgv } from '../workspace/receive.ts'
import { hasPodChanges, parseState, podHas, type PodState } from '../workspace/state.ts'
import { lastPushed, recordPush } from '../workspace/record.ts'

export { lastPushed, parseRecord, recordPush, type PushRecord } from '../workspace/record.ts'
export { FramedOutput, PUSHED_MARKER, type ShRun } from '../workspace/framed.ts'
export { PUSH_RECEIVE_EXIT, podChangesError, pushReceiveError, receiveArgv } from '../workspace/receive.ts'

export interface PushResult {
  tree: string
  from: PushSource['from']
  /** The pod's HEAD after the push (the local HEAD commit), when there is one. */
  commit?: string
  /** Bytes sent (the pack: only objects the pod lacked). */
  bytes: number
  /** Objects in the pack. */
  objects: number
  seconds: number
  /** The pod already had this tree: nothing was sent. */
  skipped: boolean
  workspace: string
}

export interface PushOptions {
  /** Send even when the pod already has the tree, and overwrite changes made in the pod. */
  force?: boolean
  /** Progress line and summary (push-tarball); the sh adapter pushes silently. */
  report?: boolean
  /** Author of the pod's commits (defaults: the local git config). */
  identity?: { name?: string; email?: string }
}

/** A push whose connection to the cluster was lost: say what that means for the workspace. */
function lostPushError(error: UserError): UserError {
  return new UserError(error.message, {
    hint: `${WORKSPACE_SRC} in the pod is the previous tree or this one, never a partial one. When the cluster answers again (trampoline status), push again.`,
    exitCode: error.exitCode,
    cause: error.cause ?? error,
  })
}

/** The pod's workspace as push-receive.sh reports it (one exec; it reads the work tree). */
export async function podState(context: CommandContext): Promise<PodState> {
  const { exitCode, stdout, stderr } = await captureInPod(context, [PUSH_RECEIVE, 'state'])
  if (exitCode !== 0) {
    throw new UserError(`reading the pod's workspace failed (exit ${exitCode}): ${stderr.trim()}`, {
      hint: `Is the pod's ${PUSH_RECEIVE} from an older trampoline? Run: trampoline setup --name ${context.names.instance}`,
      exitCode: ExitCode.failure,
    })
  }
  return parseState(stdout)
}

/** The tree last pushed to the pod, if anything was pushed (one cheap probe). */
export async function podTree(context: CommandContext): Promise<string | undefined> {
  const { exitCode, stdout } = await captureInPod(context, ['git', '-C', WORKSPACE_SRC, 'rev-parse', '--verify', '--quiet', 'refs/trampoline/pushed^{tree}'])
  const tree = stdout.trim()
  return exitCode === 0 && isTreeId(tree) ? tree : undefined
}

interface SendResult {
  exitCode: number
  stdout: string
  bytes: number
  objects: number
  seconds: number
}

/** Stream one pack into push-receive.sh receive. Resolves to its exit code and stdout. */
async function sendPack(context: CommandContext, root: string, source: PushSource, holds: PodHolds, options: PushOptions & { branch?: string }): Promise<SendResult> {
  const pack = await packFor(root, source, holds)
  let gitError: Error | undefined
  pack.done.catch((error: Error) => (gitError = error))

  const progress = new ByteProgress({ label: 'push', live: options.report ? undefined : false })
  // Its failure is reported as gitError; without a listener it would crash the process.
  progress.on('error', () => {})
  progress.phase('uploading')
  progress.on('finish', () => progress.phase('updating the pod'))
  // The stream ends only once git has exited cleanly: a failed pack-objects must not look
  // like a complete pack to the pod, so then we break the connection instead.
  pack.stream.pipe(progress, { end: false })
  pack.done.then(() => progress.end(), (error: Error) => progress.destroy(error))

  let stdout = ''
  const collect = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (stdout.length < 1 << 20) stdout += chunk.toString('utf8')
      callback()
    },
  })
  let session: ExecSession | undefined
  const unregister = onInterrupt(() => {
    session?.abort()
    pack.kill()
  })
  try {
    const argv = receiveArgv({ tree: source.tree, commit: source.commit, from: holds.tree, branch: options.branch, force: options.force, identity: options.identity })
    const exitCode = await runInPod(context, {
      command: argv,
      stdin: progress,
      // What it says on stderr is for the user; stdout (its state, when it refuses) is ours.
      stdout: collect,
      stderr: process.stderr,
      onOpen: (open) => (session = open),
    }).catch((error) => {
      if (gitError) throw gitError
      throw error instanceof UserError && error.exitCode === ExitCode.cluster ? lostPushError(error) : error
    })
    // A refusal ends the receiver before it reads the pack: git's broken pipe is no error then.
    if (gitError && exitCode === 0) throw gitError
    const { bytes, seconds } = progress.finish(exitCode === 0 && options.report ? 'pushed' : undefined)
    return { exitCode, stdout, bytes, objects: pack.objects, seconds }
  } finally {
    unregister()
    pack.kill()
    progress.finish()
  }
}

/**
 * Send the source to the pod: a pack of what the pod lacks (judged by `holds`, else by the
 * local record of the last push), retried once with what the pod says it has when that
 * guess was wrong. Throws podChangesError when the pod has changes (unless force).
 */
async function pushWorkspace(context: CommandContext, root: string, source: PushSource, options: PushOptions, holds: PodHolds | undefined, by: 'push' | 'sh'): Promise<PushResult> {
  const [branch, identity] = await Promise.all([currentBranch(root), options.identity ? Promise.resolve(options.identity) : gitIdentity(root)])
  let guess: PodHolds = holds ?? lastPushed(context.state) ?? {}
  for (let attempt = 0; ; attempt++) {
    const sent = await sendPack(context, root, source, guess, { ...options, branch, identity })
    if (sent.exitCode === 0) {
      recordPush(context.state, { tree: source.tree, commit: source.commit })
      return { tree: source.tree, from: source.from, commit: source.commit, bytes: sent.bytes, objects: sent.objects, seconds: sent.seconds, skipped: false, workspace: WORKSPACE_SRC }
    }
    if (sent.exitCode === PUSH_RECEIVE_EXIT.podChanges) throw podChangesError(context.names.instance, parseState(sent.stdout), by)
    if (sent.exitCode === PUSH_RECEIVE_EXIT.resend && attempt === 0) {
      const pod = parseState(sent.stdout)
      guess = { tree: pod.pushed, commit: pod.base }
      continue
    }
    throw pushReceiveError(sent.exitCode, context.names.instance, source.tree)
  }
}

/** Push a tree, unless the pod already has it; refuses to overwrite changes made in the pod. */
export async function pushTree(context: CommandContext, root: string, source: PushSource, options: PushOptions = {}): Promise<PushResult> {
  const base = { tree: source.tree, from: source.from, commit: source.commit, workspace: WORKSPACE_SRC }
  await requireRunningPod(context)
  const state = await podState(context)
  if (!options.force && podHas(state, source.tree, source.commit)) {
    recordPush(context.state, { tree: source.tree, commit: source.commit })
    return { ...base, bytes: 0, objects: 0, seconds: 0, skipped: true }
  }
  if (!options.force && hasPodChanges(state)) throw podChangesError(context.names.instance, state)
  return pushWorkspace(context, root, source, options, { tree: state.pushed, commit: state.base }, 'push')
}

/**
 * The sh adapter: push the work tree if it changed since the last push, then run the
 * command in the pod. An unchanged tree costs no round trip (local state); a changed one
 * goes in the command's own exec (push-receive.sh receive --framed: the pack, then the
 * command's stdin), so an edit costs one exec like no edit, plus the pod's update. A pack
 * too big for that, or a pod whose pushed tree is not the one remembered here, gets a push
 * of its own first. Resolves to the command's exit code.
 */
export async function runAfterPush(context: CommandContext, root: string, source: PushSource, run: ShRun): Promise<{ exitCode: number; push: PushResult }> {
  const base = { tree: source.tree, from: source.from, commit: source.commit, workspace: WORKSPACE_SRC }
  const last = lastPushed(context.state)
  if (last?.tree === source.tree && last.commit === source.commit) return { exitCode: await runInPod(context, run), push: { ...base, bytes: 0, objects: 0, seconds: 0, skipped: true } }

  const started = performance.now()
  const framed = await prepareFramed(root, source, last, run)
  if (!framed) return pushThenRun(context, root, source, run)
  const exitCode = await runInPod(context, framed)
  const outcome = settleFramed(context.state, context.names.instance, source, framed, exitCode)
  if ('resend' in outcome) return pushThenRun(context, root, source, run, outcome.resend)
  return { exitCode, push: { ...base, bytes: framed.bytes, objects: framed.objects, seconds: (performance.now() - started) / 1000, skipped: false } }
}

/**
 * The sh adapter's way when the framed push cannot be used: a push of its own (of what the
 * pod lacks according to `pod`, its state, when known), then the command in its own exec.
 */
export async function pushThenRun(context: CommandContext, root: string, source: PushSource, run: ShRun, pod?: PodState): Promise<{ exitCode: number; push: PushResult }> {
  const push = await pushWorkspace(context, root, source, {}, pod && { tree: pod.pushed, commit: pod.base }, 'sh')
  return { exitCode: await runInPod(context, run), push }
}
