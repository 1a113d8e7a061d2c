// A websocket to an exec or portforward subresource, written directly on `ws` rather than
// client-node's Exec/PortForward so that both directions have backpressure and the
// connection is kept alive with pings (neither is in client-node 2.0.1).
import type { KubeConfig } from '@kubernetes/client-node'
import WebSocket from 'ws'
import { randomFillSync } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import { encodeFrame, decodeFrame } from './frames.ts'
import { encodeMaskedChannelFrame, maskedChannelFrameLength } from './mask.ts'
import { FrameBuffers } from './frame-buffers.ts'

const HIGH_WATER = 4 * 1024 * 1024
const PING_INTERVAL_MS = 30_000
const CLOSE_GRACE_MS = 2_000
/** Smaller frames go through ws (its byte loop costs nothing there). */
const FAST_FRAME_MIN = 1024
// Frames of a pipe's or file's 64 KiB reads fit one pooled buffer; HIGH_WATER of them in
// flight is all the pool keeps.
const frameBuffers = new FrameBuffers(maskedChannelFrameLength(64 * 1024), HIGH_WATER / (64 * 1024))

// Fresh random mask keys (RFC 6455 5.3: unpredictable, one per frame), as ws draws them:
// from a pool refilled by the CSPRNG.
const MASK_POOL_BYTES = 8192
let maskPool = Buffer.alloc(0)
let maskIndex = 0
function nextMask(): Buffer {
  if (maskIndex + 4 > maskPool.length) {
    maskPool = randomFillSync(Buffer.allocUnsafe(MASK_POOL_BYTES))
    maskIndex = 0
  }
  const mask = maskPool.subarray(maskIndex, maskIndex + 4)
  maskIndex += 4
  return mask
}

/**
 * The connection under ws, when a data frame may be written to it directly: open, and
 * nothing queued in ws's sender (it queues only while compressing, which we turn off), so
 * frames stay in order. Undefined means "use ws.send" (also when ws's internals change, or
 * with TRAMPOLINE_WS_MASK=ws, to compare).
 */
function directSocket(ws: WebSocket): Socket | undefined {
  if (process.env.TRAMPOLINE_WS_MASK === 'ws' || ws.readyState !== WebSocket.OPEN) return undefined
  const internals = ws as unknown as { _socket?: Socket; _sender?: { _queue?: unknown[]; _state?: number } }
  const sender = internals._sender
  // ws 8: _state 0 is DEFAULT (nothing being compressed or read from a Blob).
  if (!Array.isArray(sender?._queue) || sender._queue.length !== 0 || sender._state !== 0) return undefined
  const socket = internals._socket
  return socket && typeof socket.write === 'function' && !socket.destroyed ? socket : undefined
}

export interface ChannelSocket {
  ws: WebSocket
  protocol: string
  /** Send one frame; resolves when the socket has room for more (backpressure). */
  send(channel: number, payload: Uint8Array | string): Promise<void>
  sendRaw(frame: Buffer): void
  close(): void
  closed: Promise<{ code: number; reason: string }>
}

export type FrameHandler = (channel: number, payload: Buffer) => void

export async function openChannelSocket(
  kc: KubeConfig,
  path: string,
  protocols: string[],
  onFrame: FrameHandler,
): Promise<ChannelSocket> {
  const cluster = kc.getCurrentCluster()
  if (!cluster) throw new Error('no current cluster in kubeconfig')
  const url = cluster.server.replace(/^http/, 'ws').replace(/\/$/, '') + path
  const options: WebSocket.ClientOptions = {}
  await kc.applyToHTTPSOptions(options)

  const ws = new WebSocket(url, protocols, { ...options, perMessageDeflate: false })
  // Frames can arrive in the same tick as 'open' (port-forward headers): listen first.
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const frame = isBinary ? data : Buffer.from(data.toString('latin1'), 'latin1')
    if (frame.length === 0) return
    const { channel, payload } = decodeFrame(frame)
    onFrame(channel, payload)
  })
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))
  })

  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (chunk: Buffer) => (body += chunk.toString()))
      res.on('end', () => reject(new UpgradeError(res.statusCode ?? 0, body)))
    })
    ws.once('error', reject)
  })
  ws.on('error', () => {
    // After open, errors surface as 'close'; without a listener they would crash the process.
  })

  const ping = setInterval(() => {
    if (ws.readyState === WebSocket.OPEN) ws.ping()
  }, PING_INTERVAL_MS)
  ping.unref()
  void closed.then(() => clearInterval(ping))

  const waitForRoom = () =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (ws.bufferedAmount < HIGH_WATER || ws.readyState !== WebSocket.OPEN) resolve()
        else setTimeout(check, 5)
      }
      check()
    })

  return {
    ws,
    protocol: ws.protocol,
    async send(channel, payload) {
      if (ws.readyState !== WebSocket.OPEN) throw new Error('connection to the pod closed')
      // Big data frames are framed and masked here, in 32-bit words (kube/mask.ts), and
      // written under ws: its JavaScript byte loop was half the CPU of an upload.
      const direct = typeof payload !== 'string' && payload.length >= FAST_FRAME_MIN ? directSocket(ws) : undefined
      if (direct) {
        const buffer = frameBuffers.take(maskedChannelFrameLength(payload.length))
        // Once written (encrypted, for TLS), the buffer is free for the next frame.
        direct.write(encodeMaskedChannelFrame(channel, payload as Uint8Array, nextMask(), buffer), (error) => error || frameBuffers.release(buffer))
      } else ws.send(encodeFrame(channel, payload))
      if (ws.bufferedAmount >= HIGH_WATER) await waitForRoom()
    },
    sendRaw(frame) {
      if (ws.readyState === WebSocket.OPEN) ws.send(frame)
    },
    close() {
      if (ws.readyState !== WebSocket.OPEN && ws.readyState !== WebSocket.CONNECTING) return
      ws.close()
      // ws waits up to 30 s for the peer's close frame, and the API server does not always
      // send one (a port-forward after ssh hung up): that kept `trampoline proxy`, and the
      // pipes it inherited, alive for 30 s after some ssh sessions. Once we close we expect
      // nothing more, so a peer that does not answer soon is cut off.
      const force = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS)
      void closed.then(() => clearTimeout(force))
    },
    closed,
  }
}

/** The API server answered the upgrade with an HTTP error (403, 404, 500...). */
export class UpgradeError extends Error {
  readonly statusCode: number
  readonly body: string

  constructor(statusCode: number, body: string) {
    let message = body
    try {
      message = JSON.parse(body).message ?? body
    } catch {
      // not JSON: keep the raw body
    }
    super(`HTTP ${statusCode}: ${message}`)
    this.statusCode = statusCode
    this.body = body
  }
}

/** Pump a local readable into a channel, pausing it while the socket is congested. */
export async function pumpToChannel(source: Readable, socket: ChannelSocket, channel: number): Promise<void> {
  for await (const chunk of source) {
    await socket.send(channel, chunk as Buffer)
  }
}

/**
 * Write a frame payload to a local writable; when it is full, stop reading the socket
 * until it drains, so a slow consumer slows the pod down instead of filling memory. Frames
 * ws had already read still arrive while paused: one pause waits for one drain (a listener
 * per frame piled up past Node's limit of 10 behind a slow reader).
 */
export function writeWithBackpressure(socket: Pick<ChannelSocket, 'ws'>, target: Writable, payload: Buffer): void {
  if (!target.write(payload) && !socket.ws.isPaused) {
    socket.ws.pause()
    target.once('drain', () => socket.ws.resume())
  }
}
