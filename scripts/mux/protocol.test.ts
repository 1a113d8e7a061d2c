import { describe, expect, it } from 'vitest'
import { encodeJsonFrame, encodeMuxFrame, encodeMuxHeader, Frame, FrameDecoder, MAX_FRAME } from './protocol.ts'

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

describe('FrameDecoder over many chunks', () => {
  it('reassembles big frames cut into uneven chunks, byte for byte', () => {
    const payloads = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(200_000, 7), Buffer.from(Array.from({ length: 70_001 }, (_, i) => i % 251))]
    const stream = Buffer.concat(payloads.map((p, i) => encodeMuxFrame(i % 2 ? Frame.stdout : Frame.stderr, p)))
    for (const size of [1, 3, 4, 5, 6, 4096, 65536, 65537]) {
      const decoder = new FrameDecoder()
      const out = []
      for (let at = 0; at < stream.length; at += size) out.push(...decoder.push(Buffer.from(stream.subarray(at, at + size))))
      expect(out.map((f) => f.type)).toEqual([Frame.stderr, Frame.stdout, Frame.stderr, Frame.stdout])
      out.forEach((f, i) => expect(f.payload.equals(payloads[i])).toBe(true))
      expect(decoder.buffered).toBe(0)
    }
  })

  it('encodeMuxHeader plus the payload is encodeMuxFrame', () => {
    const payload = Buffer.from('payload')
    expect(Buffer.concat([encodeMuxHeader(Frame.stdin, payload.length), payload]).equals(encodeMuxFrame(Frame.stdin, payload))).toBe(true)
  })
})
