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

export function encodeJsonFrame(type: number, value: unknown): Buffer {
  return encodeMuxFrame(type, JSON.stringify(value))
}

/** Reassembles frames from a byte stream cut anywhere. */
export class FrameDecoder {
  private pending: Buffer[] = []
  private pendingBytes = 0

  /** Feed one chunk; returns the frames it completed, in order. Throws on a malformed stream. */
  push(chunk: Buffer): Array<{ type: number; payload: Buffer }> {
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    const frames: Array<{ type: number; payload: Buffer }> = []
    while (this.pendingBytes >= HEADER) {
      let buffer = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending, this.pendingBytes)
      const length = buffer.readUInt32BE(1)
      if (length > MAX_FRAME) throw new Error(`mux frame of ${length} bytes is larger than ${MAX_FRAME}`)
      if (buffer.length < HEADER + length) {
        this.pending = [buffer]
        break
      }
      // Copy the payload out: the caller may keep it after the next push.
      frames.push({ type: buffer[0], payload: Buffer.from(buffer.subarray(HEADER, HEADER + length)) })
      buffer = buffer.subarray(HEADER + length)
      this.pending = buffer.length ? [buffer] : []
      this.pendingBytes = buffer.length
    }
    return frames
  }

  /** Bytes of an unfinished frame (a stream that ends here was cut). */
  get buffered(): number {
    return this.pendingBytes
  }
}
