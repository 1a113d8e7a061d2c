// Run a command in a pod's container over the exec subresource, streaming stdin, stdout
// and stderr with backpressure, and return the command's real exit code.
import type { KubeConfig } from '@kubernetes/client-node'
import { PassThrough, type Readable, type Writable } from 'node:stream'
import { Channel, EXEC_PROTOCOLS, encodeClose, encodeResize, execQuery, exitCodeFromStatus, supportsStdinClose } from './frames.ts'
import { openChannelSocket, pumpToChannel, writeWithBackpressure, type ChannelSocket } from './channel.ts'
import { BROKEN_PIPE_EXIT, onBrokenPipe } from './broken-pipe.ts'

export interface ExecTarget {
  kc: KubeConfig
  namespace: string
  pod: string
  container: string
}

export interface ExecOptions {
  command: string[]
  stdin?: Readable
  stdout?: Writable
  stderr?: Writable
  tty?: boolean
  /** Called with the open socket (for resize, or to abort from a signal handler). */
  onOpen?: (socket: ExecSession) => void
}

export interface ExecResult {
  exitCode: number
  /** Set when the command did not run to an exit code of its own (e.g. the pod went away). */
  message?: string
}

export interface ExecSession {
  resize(columns: number, rows: number): void
  abort(): void
  /** The channel protocol the server chose (only v5 can end stdin without ending the exec). */
  protocol: string
}

export async function exec(target: ExecTarget, options: ExecOptions): Promise<ExecResult> {
  const tty = options.tty ?? false
  const path =
    `/api/v1/namespaces/${encodeURIComponent(target.namespace)}/pods/${encodeURIComponent(target.pod)}/exec?` +
    execQuery({ container: target.container, command: options.command, stdin: !!options.stdin, tty })

  let status: ExecResult | undefined
  const stdout = options.stdout
  const stderr = options.stderr
  let socket: ChannelSocket | undefined
  const pendingFrames: [number, Buffer][] = []
  const onFrame = (channel: number, payload: Buffer) => {
    if (!socket) {
      pendingFrames.push([channel, payload])
      return
    }
    if (channel === Channel.stdout && stdout) writeWithBackpressure(socket, stdout, payload)
    else if (channel === Channel.stderr && stderr) writeWithBackpressure(socket, stderr, payload)
    else if (channel === Channel.status) status = exitCodeFromStatus(JSON.parse(payload.toString('utf8')))
  }
  socket = await openChannelSocket(target.kc, path, EXEC_PROTOCOLS, onFrame)
  for (const [channel, payload] of pendingFrames.splice(0)) onFrame(channel, payload)
  const open = socket

  let brokenPipe = false
  const unwatch = [stdout, stderr].filter((w): w is Writable => !!w).map((w) =>
    onBrokenPipe(w, () => {
      brokenPipe = true
      open.close()
    }),
  )

  options.onOpen?.({
    resize: (columns, rows) => open.sendRaw(encodeResize(columns, rows)),
    abort: () => open.close(),
    protocol: open.protocol,
  })

  if (options.stdin) {
    const stdin = options.stdin
    void pumpToChannel(stdin, open, Channel.stdin)
      .then(() => {
        // Only v5 can say "stdin ended" without closing the whole connection.
        if (supportsStdinClose(open.protocol)) open.sendRaw(encodeClose(Channel.stdin))
        else if (!tty) open.close()
      })
      .catch(() => open.close())
  }

  const { code, reason } = await open.closed
  for (const stop of unwatch) stop()
  if (brokenPipe) return { exitCode: BROKEN_PIPE_EXIT }
  if (status) return status
  return {
    exitCode: 255,
    message: code === 1000 ? 'the connection closed before the command reported its exit status' : `connection lost (${code}${reason ? `: ${reason}` : ''})`,
  }
}

/** Run a short command and collect its output (for small, bounded outputs only). */
export async function execCapture(
  target: ExecTarget,
  command: string[],
  input?: string | Buffer,
): Promise<ExecResult & { stdout: string; stderr: string }> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  const stdout = new PassThrough().on('data', (c: Buffer) => out.push(c))
  const stderr = new PassThrough().on('data', (c: Buffer) => err.push(c))
  let stdin: Readable | undefined
  if (input !== undefined) {
    const source = new PassThrough()
    source.end(input)
    stdin = source
  }
  const result = await exec(target, { command, stdin, stdout, stderr })
  return { ...result, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }
}
