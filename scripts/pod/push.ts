// Sending the project into the pod's workspace (/workspace/src, a git work tree): only the
// git objects the pod lacks travel, as one `git pack-objects` stream into push-receive.sh
// over exec, with backpressure end to end; the pod updates the files that changed with
// git itself. The push is remembered locally only once the pod has said it succeeded.
import type { CommandContext } from '../context.ts'
import { onInterrupt } from '../cleanup.ts'
import { ExitCode, UserError } from '../errors.ts'
import { gitIdentity, currentBranch, packObjects, presentObjects, treeEnv, type PushSource } from '../git.ts'
import type { ExecSession } from '../kube/exec.ts'
import { requireRunningPod } from './pods.ts'
import { ByteProgress } from '../progress.ts'
import { captureInPod, runInPod } from './run.ts'
import { isTreeId } from '../workspace.ts'
import { describeChanges, hasPodChanges, parseState, podHas, type PodState } from '../workspace/state.ts'
import { lastPushed, recordPush } from '../workspace/record.ts'

export { lastPushed, parseRecord, recordPush, type PushRecord } from '../workspace/record.ts'
import { Readable, Writable } from 'node:stream'
import { PUSH_RECEIVE, TREES_DIR, WORKSPACE_SRC } from './contract.ts'

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

/** push-receive.sh's exit codes that mean more than "failed" (see its header). */
export const PUSH_RECEIVE_EXIT = {
  /** No space left on the instance's volume (ENOSPC's errno). */
  volumeFull: 28,
  /** The pod has changes since the last push; its state is on stdout. */
  podChanges: 66,
  /** The pod's pushed tree is not the one the sender assumed; its state is on stdout. */
  resend: 67,
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

/** A push refused because it would overwrite what was changed in the pod since the last one. */
export function podChangesError(instance: string, state: PodState, by: 'push' | 'sh' = 'push'): UserError {
  const lines = describeChanges(state)
  const name = instance === 'default' ? '' : ` --name ${instance}`
  const what = by === 'sh' ? 'the command did not run: pushing the local work tree' : 'the push'
  return new UserError(`${WORKSPACE_SRC} in the pod has changes made there since the last push, and ${what} would overwrite them:\n    ${lines.join('\n    ')}`, {
    hint: `See them with: trampoline diff${name}; bring them here with: trampoline pull${name}; ` +
      `or overwrite them: trampoline push-tarball${name} --worktree --force.`,
    exitCode: ExitCode.podChanges,
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

/** push-receive.sh receive's command line. */
export function receiveArgv(request: { tree: string; commit?: string; from?: string; branch?: string; force?: boolean; identity?: { name?: string; email?: string } }): string[] {
  const argv = [PUSH_RECEIVE, 'receive', '--tree', request.tree, '--base', request.commit ?? '-', '--from', request.from ?? '-', '--branch', request.branch ?? 'trampoline']
  if (request.identity?.name) argv.push('--name', request.identity.name)
  if (request.identity?.email) argv.push('--email', request.identity.email)
  if (request.force) argv.push('--force')
  return argv
}

/** What the sender believes the pod holds: its objects are left out of the pack. */
interface PodHolds {
  tree?: string
  commit?: string
}

interface SendResult {
  exitCode: number
  stdout: string
  bytes: number
  objects: number
  seconds: number
}

/** The pack of the source's objects, without those the pod holds (as far as they are known here). */
async function packFor(root: string, source: PushSource, holds: PodHolds) {
  const env = treeEnv(source.tree)
  const present = await presentObjects(root, [holds.tree, holds.commit].filter((id): id is string => !!id), env)
  const exclude = [
    ...(holds.tree && present.includes(holds.tree) ? [holds.tree] : []),
    ...(holds.commit && present.includes(holds.commit) ? [`${holds.commit}^{tree}`] : []),
  ]
  const trees = source.commit ? [source.tree, `${source.commit}^{tree}`] : [source.tree]
  const commits = source.commit && source.commit !== holds.commit ? [source.commit] : []
  return packObjects(root, { trees, commits, exclude }, env)
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

/** The line push-receive.sh receive --framed prints once the push is done (the command's output follows). */
export const PUSHED_MARKER = 'trampoline-pushed'
/** Packs up to this size go in the command's exec (held in memory to send their length first). */
const FRAMED_PACK_LIMIT = 8 * 1024 * 1024

/** Collect a pack in memory, up to `limit` bytes; undefined (and git stopped) beyond. */
async function packBuffer(pack: Awaited<ReturnType<typeof packObjects>>, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of pack.stream) {
    size += (chunk as Buffer).length
    if (size > limit) {
      pack.kill()
      return undefined
    }
    chunks.push(chunk as Buffer)
  }
  await pack.done
  return Buffer.concat(chunks)
}

/**
 * Stdout of a framed receive: the first line is push-receive.sh's (the marker once the push
 * is done, else its state), everything after the marker is the command's and passes through.
 */
export class FramedOutput extends Writable {
  pushed = false
  /** What came before (or instead of) the marker: the receiver's state when it refused. */
  report = Buffer.alloc(0)
  private readonly target: Writable

  constructor(target: Writable) {
    super()
    this.target = target
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.pushed) {
      this.report = Buffer.concat([this.report, chunk])
      const eol = this.report.indexOf(0x0a)
      // No whole line yet, or a first line that is not the marker (a state report): keep it.
      if (eol < 0 || this.report.subarray(0, eol).toString('utf8') !== PUSHED_MARKER) return callback()
      this.pushed = true
      chunk = this.report.subarray(eol + 1)
      this.report = Buffer.alloc(0)
      if (!chunk.length) return callback()
    }
    if (this.target.write(chunk)) callback()
    else this.target.once('drain', () => callback())
  }
}

export interface ShRun {
  command: string[]
  stdin: Readable
  stdout: Writable
  stderr: Writable
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
  const plain = async (push: PushResult) => ({ exitCode: await runInPod(context, run), push })
  const last = lastPushed(context.state)
  if (last?.tree === source.tree && last.commit === source.commit) return plain({ ...base, bytes: 0, objects: 0, seconds: 0, skipped: true })

  const started = performance.now()
  const [branch, identity, pack] = await Promise.all([currentBranch(root), gitIdentity(root), packFor(root, source, last ?? {})])
  const objects = pack.objects
  const packed = await packBuffer(pack, FRAMED_PACK_LIMIT)
  if (!packed) return plain(await pushWorkspace(context, root, source, {}, undefined, 'sh'))

  const header = Buffer.from(`${packed.length}\n`)
  async function* input(): AsyncGenerator<Buffer> {
    yield Buffer.concat([header, packed!])
    for await (const chunk of run.stdin) yield chunk as Buffer
  }
  const stdout = new FramedOutput(run.stdout)
  const argv = [...receiveArgv({ tree: source.tree, commit: source.commit, from: last?.tree, branch, identity }), '--objects', String(objects), '--framed', '--', ...run.command]
  const exitCode = await runInPod(context, { command: argv, stdin: Readable.from(input()), stdout, stderr: run.stderr })
  if (stdout.pushed) {
    recordPush(context.state, { tree: source.tree, commit: source.commit })
    return { exitCode, push: { ...base, bytes: packed.length, objects, seconds: (performance.now() - started) / 1000, skipped: false } }
  }
  if (exitCode === PUSH_RECEIVE_EXIT.podChanges) throw podChangesError(context.names.instance, parseState(stdout.report), 'sh')
  if (exitCode === PUSH_RECEIVE_EXIT.resend) {
    const pod = parseState(stdout.report)
    return plain(await pushWorkspace(context, root, source, {}, { tree: pod.pushed, commit: pod.base }, 'sh'))
  }
  throw pushReceiveError(exitCode, context.names.instance, source.tree)
}
