import { PassThrough, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { ByteProgress, formatProgressLine, formatRate, formatSummary } from './progress.ts'

describe('formatting', () => {
  it('gives a rate per second, or a dash before any time has passed', () => {
    expect(formatRate(10 * 1024 * 1024, 2)).toBe('5.0 MiB/s')
    expect(formatRate(3000, 1)).toBe('2.9 KiB/s')
    expect(formatRate(100, 0)).toBe('-')
    expect(formatRate(0, 5)).toBe('0 B/s')
  })

  it('draws label, phase, bytes, rate and time', () => {
    expect(formatProgressLine({ label: 'push', phase: 'uploading', bytes: 12 * 1024 * 1024, seconds: 3 })).toBe(
      'push  uploading  12 MiB  4.0 MiB/s  3s',
    )
    expect(formatProgressLine({ label: 'push', phase: '', bytes: 0, seconds: 0 })).toBe('push  0 B  -  0s')
  })

  it('summarises in one line', () => {
    expect(formatSummary('pushed', 3 * 1024 * 1024, 1.5)).toBe('pushed 3.0 MiB in 1.5s (2.0 MiB/s)')
  })
})

/** A fake terminal: collects what would be drawn. */
function fakeTty(): NodeJS.WriteStream & { text: () => string } {
  const chunks: string[] = []
  const stream = new PassThrough() as unknown as NodeJS.WriteStream & { text: () => string }
  stream.on('data', (c: Buffer) => chunks.push(c.toString()))
  Object.assign(stream, { columns: 60, text: () => chunks.join('') })
  return stream
}

describe('ByteProgress', () => {
  it('passes bytes through unchanged and counts them', async () => {
    const progress = new ByteProgress({ label: 'push', live: false })
    const out: Buffer[] = []
    await pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), progress, async function* (source) {
      for await (const chunk of source) out.push(chunk)
    })
    expect(Buffer.concat(out).toString()).toBe('hello world')
    expect(progress.finish().bytes).toBe(11)
  })

  it('stays silent when not live', async () => {
    const tty = fakeTty()
    const progress = new ByteProgress({ label: 'push', live: false, output: tty })
    progress.phase('uploading')
    await pipeline(Readable.from([Buffer.alloc(10)]), progress, new PassThrough().resume())
    progress.finish()
    expect(tty.text()).toBe('')
  })

  it('redraws in place on a terminal and clears the line when done', async () => {
    const tty = fakeTty()
    const progress = new ByteProgress({ label: 'push', live: true, output: tty })
    progress.phase('uploading')
    await pipeline(Readable.from([Buffer.alloc(2048)]), progress, new PassThrough().resume())
    progress.finish()
    const text = tty.text()
    expect(text).toMatch(/^\rpush {2}uploading {2}0 B/)
    expect(text.endsWith('\r\x1b[K')).toBe(true)
    expect(text).not.toMatch(/\n/)
  })
})
