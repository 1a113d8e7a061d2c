import { describe, expect, it } from 'vitest'
import { FrameBuffers } from './frame-buffers.ts'

describe('FrameBuffers', () => {
  it('hands out a pooled buffer for a frame that fits, and the same one again once released', () => {
    const pool = new FrameBuffers(100, 2)
    const first = pool.take(60)
    expect(first.length).toBe(100)
    expect(pool.take(100)).not.toBe(first)
    pool.release(first)
    expect(pool.take(10)).toBe(first)
  })

  it('gives a bigger frame a buffer of its own, which is never pooled', () => {
    const pool = new FrameBuffers(100, 2)
    const big = pool.take(101)
    expect(big.length).toBe(101)
    pool.release(big)
    expect(pool.take(101)).not.toBe(big)
    expect(pool.take(50).length).toBe(100)
  })

  it('keeps at most `keep` buffers for reuse', () => {
    const pool = new FrameBuffers(10, 2)
    const taken = [pool.take(10), pool.take(10), pool.take(10)]
    for (const buffer of taken) pool.release(buffer)
    const again = [pool.take(10), pool.take(10), pool.take(10)]
    expect(again.filter((buffer) => taken.includes(buffer))).toHaveLength(2)
  })
})
