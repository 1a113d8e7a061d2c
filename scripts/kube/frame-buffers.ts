// Buffers for outgoing frames, reused once the socket has written them. An upload would
// otherwise copy every byte into a new buffer; V8 counts those as external memory and runs
// a full mark-compact of the CLI's heap (~35 MB with client-node) every few tens of MB:
// 25 of them for a 256 MiB copy-closure, about 0.5 s of the CLI's CPU (test/bench/README.md).

export class FrameBuffers {
  private readonly free: Buffer[] = []
  private readonly size: number
  private readonly keep: number

  /** Pooled buffers are `size` bytes; at most `keep` of them wait for reuse. */
  constructor(size: number, keep: number) {
    this.size = size
    this.keep = keep
  }

  /** A buffer of at least `bytes`: a pooled one when it fits, else a new one of exactly that size. */
  take(bytes: number): Buffer {
    if (bytes > this.size) return Buffer.allocUnsafe(bytes)
    return this.free.pop() ?? Buffer.allocUnsafe(this.size)
  }

  /** Give back a buffer from take() that nothing refers to any more (its write has completed). */
  release(buffer: Buffer): void {
    if (buffer.length === this.size && this.free.length < this.keep) this.free.push(buffer)
  }
}
