// Proof that a piped command's output arrived whole. Under a slow reader the cluster can cut
// the tail of an exec's output and still report success: the kubelet's stream proxy closes
// both halves when one ends, and client-go takes an error stream cut short for "exit 0"
// (kubernetes/kubernetes#124571; reproduced here with `kubectl exec -i` too). So:
//   - the pod prints a tag of its own and the command's status at the very end of stdout and
//     of stderr; the tag arrived means everything before it did, and the status in it is
//     the command's, whatever the exec's own status says;
//   - then the pod waits for the end of its stdin, which we send once both tags are in: the
//     exec ends only when nothing is left to lose (unless our stdin ended first, which ends
//     the wait; a /dev/null stdin is given to the command in the pod instead, so the wait
//     holds for that common case too);
//   - a missing tag is an error, never a silent loss.
// No client-node here: the mux client's fast path loads this.
import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import { shellQuote } from '../ssh/config.ts'
import { checkArgv } from './spare.ts'

/** A tag no real output contains: two control bytes, a name and 128 random bits. */
export function newEndTag(): string {
  return `\x1e\x1ftrampoline-end-${randomBytes(16).toString('hex')}`
}

/**
 * sh: read the command from stdin (a header: its length in bytes, a newline, then the
 * arguments shell-quoted; so that no process in the pod shows them in its command line,
 * where `pkill -f` or a scan of /proc would find this wrapper instead of the command);
 * run it (not exec: the tag comes after it), with stdin from /dev/null when $2 is 1; then
 * print the tag ($1), the status and a dot on stdout and stderr, wait for stdin to end
 * (what the command left unread is dropped), and exit with the command's status. `read`
 * and `head -c` take no byte past the header.
 */
export const END_TAG_SCRIPT =
  'm=$1; n=$2; IFS= read -r len || exit 0; eval "set -- $(head -c "$len")"; ' +
  'if [ "$n" = 1 ]; then "$@" </dev/null; else "$@"; fi; s=$?; ' +
  'printf "%s%d." "$m" "$s"; printf "%s%d." "$m" "$s" >&2; cat >/dev/null 2>&1; exit $s'

/** The argv of the wrapper; the command itself goes first on its stdin (endTagHeader). */
export function endTagArgv(tag: string, nullStdin: boolean): string[] {
  return ['sh', '-c', END_TAG_SCRIPT, 'trampoline-end', tag, nullStdin ? '1' : '0']
}

/** What the wrapper reads before the command's own stdin: the command, shell-quoted. */
export function endTagHeader(command: string[]): Buffer {
  checkArgv(command)
  const words = Buffer.from(command.map(shellQuote).join(' '), 'utf8')
  return Buffer.concat([Buffer.from(`${words.length}\n`), words])
}

/** The longest status trailer after a tag: up to 3 digits and a dot. */
const TRAILER_MAX = 4

/** Held bytes that could start the tag go out anyway after this long without more output,
 * so that a peer waiting for them (an interactive protocol) is never stuck behind us. */
const RELEASE_AFTER_MS = 200

/**
 * Passes writes on to `target`, minus the tag, with the target's backpressure. `seen` says
 * whether the tag arrived. Bytes at the end of a write that could be the tag's start are
 * held until the next write shows what they are (or RELEASE_AFTER_MS passes).
 */
export class EndTagStripper extends Writable {
  /** The tag and its status arrived. */
  seen = false
  /** The command's exit status, from the trailer. */
  status?: number
  /** Called once, when the tag and its status arrived. */
  onSeen?: () => void
  /** After the tag: the trailer's bytes so far. */
  private trailer?: Buffer
  private readonly tag: Buffer
  private readonly target: Writable
  /** Not yet passed on: a possible start of the tag. */
  private held: Buffer = Buffer.alloc(0)
  /** The last bytes passed on, for a tag whose start went out by the release timer. */
  private recent: Buffer = Buffer.alloc(0)
  private release?: NodeJS.Timeout

  constructor(target: Writable, tag: string) {
    super()
    this.target = target
    this.tag = Buffer.from(tag, 'latin1')
    // The target's reader went away (EPIPE): say so where the writer listens (kube/broken-pipe.ts).
    target.on('error', (error) => this.destroy(error))
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    clearTimeout(this.release)
    if (this.seen) {
      this.pass(chunk, callback)
      return
    }
    if (this.trailer) {
      this.readTrailer(chunk, callback)
      return
    }
    const data = this.held.length ? Buffer.concat([this.held, chunk]) : chunk
    this.held = Buffer.alloc(0)
    const at = this.find(data)
    if (at !== undefined) {
      // Bytes of the tag that went out already (a released start, at < 0) cannot be taken back.
      const before = data.subarray(0, Math.max(0, at))
      const after = data.subarray(at + this.tag.length)
      this.trailer = Buffer.alloc(0)
      this.pass(before, (error) => (error ? callback(error) : this.readTrailer(after, callback)))
      return
    }
    const keep = tagStartLength(data, this.tag)
    this.held = Buffer.from(data.subarray(data.length - keep))
    if (keep > 0) this.release = setTimeout(() => this.releaseHeld(), RELEASE_AFTER_MS)
    this.pass(data.subarray(0, data.length - keep), callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    clearTimeout(this.release)
    const rest = this.held
    this.held = Buffer.alloc(0)
    if (rest.length) this.pass(rest, callback)
    else callback()
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    clearTimeout(this.release)
    callback(error)
  }

  /** The status digits and dot after the tag; what follows them (a background process's output) passes on. */
  private readTrailer(data: Buffer, callback: (error?: Error | null) => void): void {
    const trailer = Buffer.concat([this.trailer ?? Buffer.alloc(0), data])
    const dot = trailer.indexOf(0x2e)
    if (dot < 0 && trailer.length < TRAILER_MAX) {
      this.trailer = trailer
      callback()
      return
    }
    const digits = dot >= 0 ? trailer.subarray(0, dot).toString('latin1') : ''
    this.trailer = undefined
    this.seen = true
    // A malformed trailer is not ours after all: it stays undefined, and the caller says so.
    if (/^[0-9]{1,3}$/.test(digits)) this.status = Number(digits)
    this.onSeen?.()
    this.pass(dot >= 0 ? trailer.subarray(dot + 1) : trailer, callback)
  }

  /** Where the tag starts in `data`; negative when it started in what went out already. */
  private find(data: Buffer): number | undefined {
    const at = data.indexOf(this.tag)
    if (at >= 0) return at
    if (this.recent.length === 0) return undefined
    const junction = Buffer.concat([this.recent, data.subarray(0, this.tag.length - 1)]).indexOf(this.tag)
    return junction >= 0 ? junction - this.recent.length : undefined
  }

  private releaseHeld(): void {
    const rest = this.held
    this.held = Buffer.alloc(0)
    if (rest.length) this.pass(rest, () => {})
  }

  private pass(data: Buffer, callback: (error?: Error | null) => void): void {
    if (data.length === 0) {
      callback()
      return
    }
    const keep = this.tag.length - 1
    this.recent = data.length >= keep ? Buffer.from(data.subarray(data.length - keep)) : Buffer.concat([this.recent, data]).subarray(-keep)
    if (this.target.write(data)) callback()
    else this.target.once('drain', () => callback())
  }
}

/** How many bytes at the end of `data` are a proper prefix of `tag` (the longest such). */
export function tagStartLength(data: Buffer, tag: Buffer): number {
  const most = Math.min(data.length, tag.length - 1)
  for (let length = most; length > 0; length--) {
    if (data.subarray(data.length - length).equals(tag.subarray(0, length))) return length
  }
  return 0
}
