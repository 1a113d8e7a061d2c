// A byte counter to put in a stream pipeline: on a terminal it redraws one status line
// (phase, bytes, rate) on stderr; elsewhere it only counts, and says one summary line
// at the end unless --quiet.
import { Transform, type TransformCallback } from 'node:stream'
import { info, showsProgress } from './log.ts'
import { formatBytes, formatDuration } from './units.ts'

const REDRAW_MS = 100
/** Keeps the line (and the rate) moving while no bytes flow, e.g. while the pod unpacks. */
const TICK_MS = 500

export function formatRate(bytes: number, seconds: number): string {
  if (!(seconds > 0)) return '-'
  return `${formatBytes(Math.round(bytes / seconds))}/s`
}

export interface ProgressSnapshot {
  label: string
  phase: string
  bytes: number
  seconds: number
}

/** The in-place status line: "push  uploading  12.0 MiB  4.0 MiB/s  3s". */
export function formatProgressLine({ label, phase, bytes, seconds }: ProgressSnapshot): string {
  return [label, phase, formatBytes(bytes), formatRate(bytes, seconds), formatDuration(seconds)].filter(Boolean).join('  ')
}

/** The closing line: "pushed 12.0 MiB in 3.2s (3.8 MiB/s)". */
export function formatSummary(verb: string, bytes: number, seconds: number): string {
  return `${verb} ${formatBytes(bytes)} in ${seconds.toFixed(1)}s (${formatRate(bytes, seconds)})`
}

export interface ProgressOptions {
  label: string
  /** Draw the live line; defaults to log.showsProgress() (a TTY, not CI, not --quiet). */
  live?: boolean
  /** Where the live line goes. */
  output?: NodeJS.WriteStream
}

export class ByteProgress extends Transform {
  bytes = 0
  private phaseName = ''
  private readonly label: string
  private readonly live: boolean
  private readonly output: NodeJS.WriteStream
  private readonly started = performance.now()
  private lastDraw = 0
  private drawn = false
  private ticker?: NodeJS.Timeout

  constructor(options: ProgressOptions) {
    super()
    this.label = options.label
    this.live = options.live ?? showsProgress()
    this.output = options.output ?? process.stderr
    if (this.live) {
      this.ticker = setInterval(() => this.draw(true), TICK_MS)
      this.ticker.unref()
    }
  }

  get seconds(): number {
    return (performance.now() - this.started) / 1000
  }

  phase(name: string): void {
    this.phaseName = name
    this.draw(true)
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length
    this.draw(false)
    callback(null, chunk)
  }

  /** Stop drawing and clear the line; with a verb, say the summary ("pushed 3 MiB in..."). */
  finish(verb?: string): { bytes: number; seconds: number } {
    const seconds = this.seconds
    this.stopDrawing()
    if (verb) info(formatSummary(verb, this.bytes, seconds))
    return { bytes: this.bytes, seconds }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopDrawing()
    callback(error)
  }

  private stopDrawing(): void {
    if (this.ticker) clearInterval(this.ticker)
    this.ticker = undefined
    if (this.drawn) this.output.write('\r\x1b[K')
    this.drawn = false
  }

  private draw(force: boolean): void {
    if (!this.ticker) return
    const now = performance.now()
    if (!force && now - this.lastDraw < REDRAW_MS) return
    this.lastDraw = now
    const line = formatProgressLine({ label: this.label, phase: this.phaseName, bytes: this.bytes, seconds: this.seconds })
    const width = this.output.columns || 80
    this.output.write(`\r${line.slice(0, width - 1)}\x1b[K`)
    this.drawn = true
  }
}
