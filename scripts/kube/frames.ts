// The Kubernetes channel protocol spoken over exec and port-forward websockets: every
// message is one byte of channel number followed by payload. Pure, so it is unit-tested.

export const Channel = {
  stdin: 0,
  stdout: 1,
  stderr: 2,
  /** Exec: a v1 Status JSON when the command ends. */
  status: 3,
  resize: 4,
  /** v5 only: [255, n] closes channel n (how stdin EOF reaches the remote command). */
  close: 255,
} as const

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io']
export const PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io', 'portforward.k8s.io']

export function encodeFrame(channel: number, payload: Uint8Array | string): Buffer {
  const data = typeof payload === 'string' ? Buffer.from(payload) : payload
  const frame = Buffer.allocUnsafe(data.length + 1)
  frame[0] = channel
  frame.set(data, 1)
  return frame
}

export function encodeClose(channel: number): Buffer {
  return Buffer.from([Channel.close, channel])
}

export function encodeResize(columns: number, rows: number): Buffer {
  return encodeFrame(Channel.resize, JSON.stringify({ Width: columns, Height: rows }))
}

export function decodeFrame(message: Buffer): { channel: number; payload: Buffer } {
  return { channel: message[0], payload: message.subarray(1) }
}

export function supportsStdinClose(protocol: string): boolean {
  return protocol === 'v5.channel.k8s.io'
}

interface ExecStatus {
  status?: string
  reason?: string
  message?: string
  details?: { causes?: { reason?: string; message?: string }[] }
}

/**
 * The remote exit code from the exec status message: Success is 0, NonZeroExitCode
 * carries the code as an ExitCode cause. Anything else (the container vanished, the
 * command was not found) has no code of its own; report it with its message.
 */
export function exitCodeFromStatus(status: ExecStatus): { exitCode: number; message?: string } {
  if (status.status === 'Success') return { exitCode: 0 }
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode')
  const code = cause?.message !== undefined ? Number.parseInt(cause.message, 10) : Number.NaN
  if (status.reason === 'NonZeroExitCode' && Number.isInteger(code)) return { exitCode: code }
  return { exitCode: 126, message: status.message ?? status.reason ?? 'remote command failed' }
}

/** The first frame on each port-forward channel carries the port number, little-endian. */
export function portFromHeader(payload: Buffer): number | undefined {
  return payload.length >= 2 ? payload.readUInt16LE(0) : undefined
}

/** Query string for the exec subresource: every argv element is its own `command` parameter. */
export function execQuery(options: { container: string; command: string[]; stdin: boolean; tty: boolean }): string {
  const params = new URLSearchParams()
  params.set('container', options.container)
  for (const arg of options.command) params.append('command', arg)
  params.set('stdout', 'true')
  params.set('stderr', options.tty ? 'false' : 'true')
  params.set('stdin', String(options.stdin))
  params.set('tty', String(options.tty))
  return params.toString()
}
