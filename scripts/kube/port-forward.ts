// A TCP stream to a port inside a pod, through the API server's portforward subresource.
// One websocket per stream and never a silent reconnect: a reconnect would splice two TCP
// connections into one byte stream, which corrupts SSH.
import { Duplex } from 'node:stream'
import type { KubeConfig } from '@kubernetes/client-node'
import { PORT_FORWARD_PROTOCOLS, portFromHeader } from './frames.ts'
import { openChannelSocket, type ChannelSocket } from './channel.ts'

const DATA = 0
const ERROR = 1

export interface PortForwardTarget {
  kc: KubeConfig
  namespace: string
  pod: string
  port: number
}

/**
 * The tunnel's websocket closed without a normal close frame while we still used it: the
 * API server (or something between us) went away mid-stream. Never a clean end of the
 * stream: whatever ran over it was cut off.
 */
export class TunnelLostError extends Error {
  readonly closeCode: number

  constructor(closeCode: number, reason: string) {
    super(`the connection to the cluster was cut (websocket closed with ${closeCode}${reason ? `: ${reason}` : ''})`)
    this.name = 'TunnelLostError'
    this.closeCode = closeCode
  }
}

/** Close codes that end a tunnel cleanly: 1000 normal, 1005 a close frame without a code. */
export function isCleanClose(code: number): boolean {
  return code === 1000 || code === 1005
}

export async function openPortForward(target: PortForwardTarget): Promise<Duplex> {
  const path =
    `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}` +
    `/portforward?ports=${target.port}`
  const seenHeader = new Set<number>()
  let socket: ChannelSocket | undefined
  let errorText = ''
  let closing = false
  const early: Buffer[] = []

  const stream = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (!socket) return callback(new Error('port-forward is not open'))
      socket.send(DATA, chunk).then(() => callback(), callback)
    },
    read() {
      socket?.ws.resume()
    },
    final(callback) {
      // The protocol has no half-close; the peer closes when it is done.
      callback()
    },
    destroy(error, callback) {
      closing = true
      socket?.close()
      callback(error)
    },
  })

  const deliver = (payload: Buffer) => {
    if (!stream.push(payload)) socket?.ws.pause()
  }
  const onFrame = (channel: number, payload: Buffer) => {
    if (!seenHeader.has(channel)) {
      // Each channel starts with the port number; it is not part of the stream.
      seenHeader.add(channel)
      if (portFromHeader(payload) !== undefined) payload = payload.subarray(2)
      if (payload.length === 0) return
    }
    if (channel === DATA) {
      if (socket) deliver(payload)
      else early.push(payload)
    } else if (channel === ERROR && payload.length > 0) {
      // An empty error frame is not an error; a non-empty one ends the stream.
      errorText += payload.toString('utf8')
      stream.destroy(new Error(`port-forward to ${target.pod}:${target.port} failed: ${errorText.trim()}`))
    }
  }

  socket = await openChannelSocket(target.kc, path, PORT_FORWARD_PROTOCOLS, onFrame)
  for (const payload of early.splice(0)) deliver(payload)
  void socket.closed.then(({ code, reason }) => {
    if (stream.destroyed) return
    // The server ends a tunnel with a close frame; a connection that just drops (the API
    // server stopped, a proxy cut it) is an error, not the end of the stream.
    if (closing || isCleanClose(code)) stream.push(null)
    else stream.destroy(new TunnelLostError(code, reason))
  })
  return stream
}
