// RFC 6455 client masking in 32-bit words. ws masks every client frame with a byte loop
// in JavaScript unless the native `bufferutil` package is installed; for an upload that was
// about half the CLI's CPU (test/bench/README.md). XOR-ing aligned 32-bit words is
// 2-3 times faster and needs nothing native. Pure, so it is unit-tested against the byte loop.
import { endianness } from 'node:os'

const LITTLE_ENDIAN = endianness() === 'LE'

/**
 * XOR `length` bytes of `buffer` from `start` with the 4-byte `mask` (mask[0] on the
 * first byte), in place.
 */
export function maskInPlace(buffer: Buffer, start: number, length: number, mask: Uint8Array): void {
  let i = 0
  if (LITTLE_ENDIAN && length >= 32) {
    // Bytes up to the first 4-aligned address, then words, then the tail.
    const head = (4 - ((buffer.byteOffset + start) & 3)) & 3
    for (; i < head; i++) buffer[start + i] ^= mask[i & 3]
    const words = (length - head) >>> 2
    const word = mask[i & 3] | (mask[(i + 1) & 3] << 8) | (mask[(i + 2) & 3] << 16) | (mask[(i + 3) & 3] << 24)
    const view = new Int32Array(buffer.buffer, buffer.byteOffset + start + head, words)
    let w = 0
    for (const end = words - 3; w < end; w += 4) {
      view[w] ^= word
      view[w + 1] ^= word
      view[w + 2] ^= word
      view[w + 3] ^= word
    }
    for (; w < words; w++) view[w] ^= word
    i += words * 4
  }
  for (; i < length; i++) buffer[start + i] ^= mask[i & 3]
}

/** Bytes of a frame's extended payload length (RFC 6455 5.2) for a payload of `length`. */
function extendedLengthBytes(length: number): 0 | 2 | 8 {
  return length < 126 ? 0 : length < 65536 ? 2 : 8
}

/** The size of encodeMaskedChannelFrame's frame for `dataLength` bytes of data. */
export function maskedChannelFrameLength(dataLength: number): number {
  const length = dataLength + 1
  return 2 + extendedLengthBytes(length) + 4 + length
}

/**
 * One masked binary websocket frame (FIN set) whose payload is `channel` followed by
 * `data`: the Kubernetes channel framing and the websocket framing in one buffer, so the
 * payload is copied once and masked in place. Written into the start of `into` when it is
 * big enough (a reused buffer), else into a new one.
 */
export function encodeMaskedChannelFrame(channel: number, data: Uint8Array, mask: Uint8Array, into?: Buffer): Buffer {
  const length = data.length + 1
  const lengthBytes = extendedLengthBytes(length)
  const header = 2 + lengthBytes + 4
  const frame = into && into.length >= header + length ? into.subarray(0, header + length) : Buffer.allocUnsafe(header + length)
  frame[0] = 0x82
  if (lengthBytes === 0) frame[1] = 0x80 | length
  else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 0x80 | 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  frame.set(mask.subarray(0, 4), header - 4)
  frame[header] = channel
  frame.set(data, header + 1)
  maskInPlace(frame, header, length, mask)
  return frame
}
