// The sh adapter's push: the pack of what the pod lacks travels in the command's own exec
// (push-receive.sh receive --framed -- COMMAND: a line with the pack's length, the pack,
// then the command's stdin), so an edit costs one exec like no edit. Free of client-node:
// the sh adapter runs it through the mux helper without loading the cluster client, and
// push.ts runs it over an exec of its own.
import { Readable, Writable } from 'node:stream'
import { changedObjects, currentBranch, gitIdentity, packList, packObjects, presentObjects, treeEnv, type GitPack, type PushSource } from '../git.ts'
import type { InstanceState } from '../state.ts'
import { parseState, type PodState } from './state.ts'
import { recordPush, type PushRecord } from './record.ts'
import { PUSH_RECEIVE_EXIT, podChangesError, pushReceiveError, receiveArgv } from './receive.ts'

/** What the sender believes the pod holds: its objects are left out of the pack. */
export interface PodHolds {
  tree?: string
  commit?: string
}

/** The pack of the source's objects, without those the pod holds (as far as they are known here). */
export async function packFor(root: string, source: PushSource, holds: PodHolds): Promise<GitPack> {
  const env = treeEnv(source.tree)
  // The usual edit: the pod has this commit and a tree that is here: what differs from it.
  if (holds.tree && source.commit === holds.commit) {
    const changed = await changedObjects(root, holds.tree, source.tree, env)
    if (changed) return packList(root, changed, env)
  }
  const present = await presentObjects(root, [holds.tree, holds.commit].filter((id): id is string => !!id), env)
  const exclude = [
    ...(holds.tree && present.includes(holds.tree) ? [holds.tree] : []),
    ...(holds.commit && present.includes(holds.commit) ? [`${holds.commit}^{tree}`] : []),
  ]
  const trees = source.commit ? [source.tree, `${source.commit}^{tree}`] : [source.tree]
  const commits = source.commit && source.commit !== holds.commit ? [source.commit] : []
  return packObjects(root, { trees, commits, exclude }, env)
}

/** The line push-receive.sh receive --framed prints once the push is done (the command's output follows). */
export const PUSHED_MARKER = 'trampoline-pushed'
/** Packs up to this size go in the command's exec (held in memory to send their length first). */
const FRAMED_PACK_LIMIT = 8 * 1024 * 1024

/** Collect a pack in memory, up to `limit` bytes; undefined (and git stopped) beyond. */
async function packBuffer(pack: GitPack, limit: number): Promise<Buffer | undefined> {
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

/** A command of the sh adapter, with its stdio. */
export interface ShRun {
  command: string[]
  stdin: Readable
  stdout: Writable
  stderr: Writable
}

/** One framed receive, ready to run: its argv and stdio (stdin: the pack, then the command's). */
export interface FramedPush {
  command: string[]
  stdin: Readable
  stdout: FramedOutput
  stderr: Writable
  /** The pack's size and object count. */
  bytes: number
  objects: number
}

/**
 * The framed receive of `source` then `run`, the pack holding what the pod lacks according
 * to the last push recorded here; undefined when that pack is too big to hold in memory
 * (it then gets a push of its own first).
 */
export async function prepareFramed(root: string, source: PushSource, last: PushRecord | undefined, run: ShRun): Promise<FramedPush | undefined> {
  const [branch, identity, pack] = await Promise.all([currentBranch(root), gitIdentity(root), packFor(root, source, last ?? {})])
  const objects = pack.objects
  const packed = await packBuffer(pack, FRAMED_PACK_LIMIT)
  if (!packed) return undefined
  const header = Buffer.from(`${packed.length}\n`)
  // Read only when the exec reads it: until then the command may still go another way.
  async function* input(): AsyncGenerator<Buffer> {
    yield Buffer.concat([header, packed!])
    for await (const chunk of run.stdin) yield chunk as Buffer
  }
  const argv = receiveArgv({ tree: source.tree, commit: source.commit, from: last?.tree, branch, identity })
  return {
    command: [...argv, '--objects', String(objects), '--framed', '--', ...run.command],
    stdin: Readable.from(input()),
    stdout: new FramedOutput(run.stdout),
    stderr: run.stderr,
    bytes: packed.length,
    objects,
  }
}

/**
 * What a framed receive's exit means: the command ran (its exit code; the push is recorded
 * here), or the pod's pushed tree was not the one recorded here (its state: resend what it
 * lacks, then run the command). Throws when the pod has changes of its own, or failed.
 */
export function settleFramed(state: InstanceState, instance: string, source: PushSource, framed: FramedPush, exitCode: number): { exitCode: number } | { resend: PodState } {
  if (framed.stdout.pushed) {
    recordPush(state, { tree: source.tree, commit: source.commit })
    return { exitCode }
  }
  if (exitCode === PUSH_RECEIVE_EXIT.podChanges) throw podChangesError(instance, parseState(framed.stdout.report), 'sh')
  if (exitCode === PUSH_RECEIVE_EXIT.resend) return { resend: parseState(framed.stdout.report) }
  throw pushReceiveError(exitCode, instance, source.tree)
}
