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

export async function openPortForward(target: PortForwardTarget): Promise<Duplex> {
  const path =
    `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}` +
    `/portforward?ports=${target.port}`
  const seenHeader = new Set<number>()
  let socket: ChannelSocket | undefined
  let errorText = ''
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
  void socket.closed.then(() => {
    if (!stream.destroyed) stream.push(null)
  })
  return stream
}
