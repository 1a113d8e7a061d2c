// The mux helper's wire protocol on its Unix socket: length-prefixed frames, one byte of
// type and four of payload length (big-endian), then the payload. Pure, so it is unit-tested.
//
// client -> helper: REQUEST (JSON MuxRequest) first, then STDIN data and STDIN_END.
// helper -> client: STARTED once the command has been handed to the pod (until then nothing
//   ran and no stdin was read, so a client may still run the command itself), STDOUT and
//   STDERR data, and last EXIT (JSON {exitCode}) or ERROR (JSON MuxError).
// The client closing the socket before EXIT aborts the command (as the direct path's
// websocket closing does when the CLI dies, e.g. on Ctrl-C).

export const MUX_PROTOCOL = 1

export const Frame = {
  request: 1,
  stdin: 2,
  stdinEnd: 3,
  started: 10,
  stdout: 11,
  stderr: 12,
  exit: 13,
  error: 14,
  /** Ignored by the client: lets a helper that stopped reading (stdin backpressure) notice the client is gone. */
  ping: 15,
} as const

export interface MuxRequest {
  protocol: number
  /** The socket key the client computed: a helper serving another key refuses. */
  key: string
  command: string[]
}

/** A failure the helper turned into words (a UserError there); `fallback`: nothing ran, the client should run the command itself. */
export interface MuxError {
  message: string
  hint?: string
  exitCode: number
  fallback?: boolean
}

const HEADER = 5
/** Larger frames are a protocol error (data frames carry at most one read's worth). */
export const MAX_FRAME = 16 * 1024 * 1024

export function encodeMuxFrame(type: number, payload: Uint8Array | string = Buffer.alloc(0)): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload
  const frame = Buffer.allocUnsafe(HEADER + data.length)
  frame[0] = type
  frame.writeUInt32BE(data.length, 1)
  frame.set(data, HEADER)
  return frame
}

/** A data frame's header alone: written before the payload itself, which is then not copied. */
export function encodeMuxHeader(type: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER)
  header[0] = type
  header.writeUInt32BE(length, 1)
  return header
}

/** Write a data frame as header and payload (one writev, corked); returns write()'s backpressure answer. */
export function writeMuxData(socket: { cork(): void; uncork(): void; write(data: Uint8Array): boolean }, type: number, payload: Buffer): boolean {
  socket.cork()
  socket.write(encodeMuxHeader(type, payload.length))
  const room = socket.write(payload)
  socket.uncork()
  return room
}

export function encodeJsonFrame(type: number, value: unknown): Buffer {
  return encodeMuxFrame(type, JSON.stringify(value))
}

/**
 * Reassembles frames from a byte stream cut anywhere. Each byte is copied at most once (a
 * frame cut across chunks), and a frame within one chunk is a view of it: push chunks that
 * nobody writes to again, as a socket's are.
 */
export class FrameDecoder {
  /** Chunks not consumed yet, from `first` on (an index, not shift(): many tiny chunks stay linear). */
  private pending: Buffer[] = []
  private first = 0
  private pendingBytes = 0
  /** HEADER + payload length of the frame being gathered, once its header is known. */
  private frameBytes?: number

  /** Feed one chunk; returns the frames it completed, in order. Throws on a malformed stream. */
  push(chunk: Buffer): Array<{ type: number; payload: Buffer }> {
    if (chunk.length) {
      this.pending.push(chunk)
      this.pendingBytes += chunk.length
    }
    const frames: Array<{ type: number; payload: Buffer }> = []
    for (;;) {
      if (this.frameBytes === undefined) {
        if (this.pendingBytes < HEADER) break
        const length = this.peekHeader().readUInt32BE(1)
        if (length > MAX_FRAME) throw new Error(`mux frame of ${length} bytes is larger than ${MAX_FRAME}`)
        this.frameBytes = HEADER + length
      }
      if (this.pendingBytes < this.frameBytes) break
      const frame = this.take(this.frameBytes)
      this.frameBytes = undefined
      frames.push({ type: frame[0], payload: frame.subarray(HEADER) })
    }
    // Drop consumed chunks: at once when nothing is left, else now and then (a long stream
    // always has a frame in progress).
    if (this.first === this.pending.length) {
      this.pending = []
      this.first = 0
    } else if (this.first > 1024 && this.first * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.first)
      this.first = 0
    }
    return frames
  }

  /** The first chunk, joined with the next ones until it holds a whole header. */
  private peekHeader(): Buffer {
    let end = this.first
    let bytes = 0
    while (bytes < HEADER) bytes += this.pending[end++].length
    if (end - this.first > 1) this.pending.splice(this.first, end - this.first, Buffer.concat(this.pending.slice(this.first, end), bytes))
    return this.pending[this.first]
  }

  /** Consume the first `bytes` pending bytes, as one buffer. */
  private take(bytes: number): Buffer {
    this.pendingBytes -= bytes
    const head = this.pending[this.first]
    if (head.length >= bytes) {
      if (head.length === bytes) this.first++
      else this.pending[this.first] = head.subarray(bytes)
      return head.subarray(0, bytes)
    }
    const out = Buffer.allocUnsafe(bytes)
    let filled = 0
    while (filled < bytes) {
      const part = this.pending[this.first]
      const used = Math.min(part.length, bytes - filled)
      part.copy(out, filled, 0, used)
      filled += used
      if (used === part.length) this.first++
      else this.pending[this.first] = part.subarray(used)
    }
    return out
  }

  /** Bytes of an unfinished frame (a stream that ends here was cut). */
  get buffered(): number {
    return this.pendingBytes
  }
}
