import { describe, expect, it } from 'vitest'
import { encodeJsonFrame, encodeMuxFrame, Frame, FrameDecoder, MAX_FRAME } from './protocol.ts'

describe('mux frames', () => {
  it('round-trips frames cut at every byte boundary', () => {
    const frames = [encodeJsonFrame(Frame.request, { command: ['sh', '-c', 'true'] }), encodeMuxFrame(Frame.stdin, Buffer.from([0, 1, 2, 255])), encodeMuxFrame(Frame.stdinEnd)]
    const stream = Buffer.concat(frames)
    for (let cut = 0; cut <= stream.length; cut++) {
      const decoder = new FrameDecoder()
      const out = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))]
      expect(out.map((f) => f.type)).toEqual([Frame.request, Frame.stdin, Frame.stdinEnd])
      expect(JSON.parse(out[0].payload.toString())).toEqual({ command: ['sh', '-c', 'true'] })
      expect([...out[1].payload]).toEqual([0, 1, 2, 255])
      expect(out[2].payload.length).toBe(0)
      expect(decoder.buffered).toBe(0)
    }
  })

  it('decodes one byte at a time and keeps payloads valid after later pushes', () => {
    const stream = Buffer.concat([encodeMuxFrame(Frame.stdout, 'abc'), encodeMuxFrame(Frame.stderr, 'de')])
    const decoder = new FrameDecoder()
    const out = []
    for (const byte of stream) out.push(...decoder.push(Buffer.from([byte])))
    expect(out.map((f) => [f.type, f.payload.toString()])).toEqual([[Frame.stdout, 'abc'], [Frame.stderr, 'de']])
  })

  it('reports an unfinished frame and refuses an oversized one', () => {
    const decoder = new FrameDecoder()
    expect(decoder.push(encodeMuxFrame(Frame.stdout, 'abcdef').subarray(0, 7))).toEqual([])
    expect(decoder.buffered).toBe(7)
    const huge = Buffer.alloc(5)
    huge[0] = Frame.stdout
    huge.writeUInt32BE(MAX_FRAME + 1, 1)
    expect(() => new FrameDecoder().push(huge)).toThrow(/larger than/)
  })
})
