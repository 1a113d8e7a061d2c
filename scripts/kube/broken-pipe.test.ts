import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { onBrokenPipe } from './broken-pipe.ts'

const failing = (code: string) =>
  new Writable({
    write(_chunk, _encoding, callback) {
      callback(Object.assign(new Error(code), { code }))
    },
  })

describe('onBrokenPipe', () => {
  it('reports EPIPE once the reader is gone, and the error is never unhandled', async () => {
    const output = failing('EPIPE')
    let broken = 0
    const stop = onBrokenPipe(output, () => broken++)
    output.write('x')
    await new Promise((resolve) => setImmediate(resolve))
    expect(broken).toBe(1)
    stop()
    // Still no unhandled 'error' for writes queued before: the quiet listener stays.
    output.emit('error', Object.assign(new Error('EPIPE'), { code: 'EPIPE' }))
    expect(broken).toBe(1)
  })

  it('leaves other errors to whoever else listens', async () => {
    const output = failing('EIO')
    let broken = 0
    onBrokenPipe(output, () => broken++)
    output.write('x')
    await new Promise((resolve) => setImmediate(resolve))
    expect(broken).toBe(0)
  })
})
