import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import type { EventEmitter } from 'node:events'
import { encodeMaskedChannelFrame, maskedChannelFrameLength, maskInPlace } from './mask.ts'

// ws's frame parser, as a server runs it (not in its type declarations).
const { Receiver } = createRequire(import.meta.url)('ws') as { Receiver: new (options: { isServer: boolean }) => EventEmitter & { write(chunk: Buffer): void } }

function byteLoop(data: Buffer, mask: Uint8Array): Buffer {
  const out = Buffer.from(data)
  for (let i = 0; i < out.length; i++) out[i] ^= mask[i & 3]
  return out
}

describe('maskInPlace', () => {
  it('equals the byte loop for every alignment and length around the word boundaries', () => {
    const mask = Uint8Array.from([0x12, 0x34, 0x56, 0x78])
    const data = randomBytes(300)
    for (let offset = 0; offset < 8; offset++) {
      for (const length of [0, 1, 3, 4, 31, 32, 33, 35, 64, 127, 255, 291]) {
        const backing = Buffer.alloc(offset + length + 8, 0xee)
        const region = backing.subarray(offset)
        data.copy(region, 0, 0, length)
        maskInPlace(region, 0, length, mask)
        expect(region.subarray(0, length)).toEqual(byteLoop(data.subarray(0, length), mask))
        // Nothing outside the region is touched.
        expect(region.subarray(length).every((b) => b === 0xee)).toBe(true)
      }
    }
  })
})

describe('encodeMaskedChannelFrame', () => {
  it('is a valid masked frame that a websocket server decodes to channel + data, for every length class', async () => {
    for (const size of [0, 10, 124, 125, 200, 65534, 65535, 70000]) {
      const data = randomBytes(size)
      const frame = encodeMaskedChannelFrame(3, data, randomBytes(4))
      const receiver = new Receiver({ isServer: true })
      const message = new Promise<Buffer>((resolve, reject) => {
        receiver.on('message', (payload: Buffer) => resolve(payload))
        receiver.on('error', reject)
      })
      receiver.write(frame)
      const payload = await message
      expect(payload[0]).toBe(3)
      expect(payload.subarray(1).equals(data)).toBe(true)
    }
  })

  it('writes the same frame into the start of a reused buffer, and its length is maskedChannelFrameLength', () => {
    for (const size of [0, 124, 125, 65534, 65535, 70000]) {
      const data = randomBytes(size)
      const mask = randomBytes(4)
      const fresh = encodeMaskedChannelFrame(3, data, mask)
      const into = randomBytes(maskedChannelFrameLength(70000) + 10)
      const reused = encodeMaskedChannelFrame(3, data, mask, into)
      expect(fresh.length).toBe(maskedChannelFrameLength(size))
      expect(reused.buffer).toBe(into.buffer)
      expect(reused.equals(fresh)).toBe(true)
    }
  })

  it('does not write into a buffer that is too small', () => {
    const small = Buffer.alloc(8)
    const frame = encodeMaskedChannelFrame(1, randomBytes(100), randomBytes(4), small)
    expect(frame.buffer).not.toBe(small.buffer)
    expect(small.equals(Buffer.alloc(8))).toBe(true)
  })
})
