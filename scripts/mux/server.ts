// The mux helper: one per instance and kubeconfig identity (scripts/mux/key.ts), started
// on demand by a command (scripts/mux/client.ts) as `trampoline shell --mux-serve`. It keeps
// what every short command would otherwise pay for again: client-node loaded, the
// kubeconfig and its credentials (exec plugins run once per token), and a spare exec in the
// user container (scripts/mux/spare.ts) that starts the next command without a new exec.
//
// Each command: the pod is read (as `shell` always did: a stopped, deleting or recreated
// pod gets the same errors as without the helper; a spare of another pod UID is dropped),
// the spare takes the argv, stdio is relayed with backpressure, and the exit status or the
// error (pod/run.ts's explanations) goes back. Lifetime: ends after TRAMPOLINE_MUX_IDLE
// seconds (default 600) without commands, when its socket is removed or replaced (`clean`
// deletes the state dir, wherever the socket is; a newer helper took over), when the
// instance has no pod any more, and on SIGTERM/SIGINT/SIGHUP (commands still running
// through it get 5 s). While a spare waits the pod counts an exec session as activity, so
// an unused spare is closed after 60 s, or a quarter of the pod's idle timeout when that is
// shorter (idle shutdown comes that much later).
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { PassThrough, Writable } from 'node:stream'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError, formatError } from '../errors.ts'
import { exec, type ExecResult, type ExecSession } from '../kube/exec.ts'
import { supportsStdinClose } from '../kube/frames.ts'
import type { V1Pod } from '@kubernetes/client-node'
import { requireRunningPod, userTarget } from '../pod/pods.ts'
import { execOpenError, explainExecResult, openWithRetry } from '../pod/run.ts'
import { muxEndpoint } from './client.ts'
import { encodeJsonFrame, encodeMuxFrame, Frame, FrameDecoder, MUX_PROTOCOL, writeMuxData, type MuxError, type MuxRequest } from './protocol.ts'
import { SPARE_ARGV, encodeSpareHeader } from './spare.ts'
import { IDLE_TIMEOUT_ENV, USER_CONTAINER } from '../pod/contract.ts'

const DEFAULT_IDLE_SECONDS = 600
const SPARE_IDLE_MS = 60_000
/** A spare counts as activity in the pod: it never holds a pod more than this share of its idle timeout. */
const SPARE_IDLE_SHARE = 0.25
const SOCKET_CHECK_MS = 2_000
const PING_WHILE_PAUSED_MS = 1_000
/** After a signal, commands still running through the helper get this long before it exits. */
const SIGNAL_GRACE_MS = 5_000

function log(message: string): void {
  process.stderr.write(`${new Date().toISOString()} [mux ${process.pid}] ${message}\n`)
}

/** A writable whose bytes go to whoever holds the spare now (nothing before), with backpressure. */
class Relay extends Writable {
  target?: (chunk: Buffer, done: () => void) => void

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.target) this.target(chunk, () => callback())
    else callback()
  }
}

interface Spare {
  podUid: string
  stdin: PassThrough
  stdout: Relay
  stderr: Relay
  session: ExecSession
  /** Resolves when the exec ends (the spare died, or its command finished). */
  done: Promise<ExecResult>
  ended: boolean
  idle?: NodeJS.Timeout
}

export async function serveMux(context: CommandContext, env = process.env): Promise<void> {
  process.umask(0o077)
  const endpoint = muxEndpoint(context, env)
  if (!endpoint || endpoint.key !== env.TRAMPOLINE_MUX_KEY || endpoint.socket !== env.TRAMPOLINE_MUX_SOCKET) {
    // The kubeconfig changed between the command and us: its socket is not ours to serve.
    log(`not serving: key ${endpoint?.key} at ${endpoint?.socket}, the command expected ${env.TRAMPOLINE_MUX_KEY} at ${env.TRAMPOLINE_MUX_SOCKET}`)
    process.exitCode = 1
    return
  }
  const idleMs = Number(env.TRAMPOLINE_MUX_IDLE || DEFAULT_IDLE_SECONDS) * 1000
  const helper = new Helper(context, endpoint.key, endpoint.socket, idleMs)
  await helper.run()
}

class Helper {
  private server?: Server
  private inode?: number
  private active = 0
  private idleTimer?: NodeJS.Timeout
  private checkTimer?: NodeJS.Timeout
  private spare?: Spare
  private opening?: Promise<Spare>
  private stopping = false
  private podMissing = false
  private spareIdleMs = SPARE_IDLE_MS
  private finished!: () => void

  private readonly context: CommandContext
  private readonly key: string
  private readonly path: string
  private readonly idleMs: number

  constructor(context: CommandContext, key: string, path: string, idleMs: number) {
    this.context = context
    this.key = key
    this.path = path
    this.idleMs = idleMs
  }

  async run(): Promise<void> {
    const done = new Promise<void>((resolve) => (this.finished = resolve))
    if (!(await this.listen())) return
    log(`serving ${this.context.names.pod} in ${this.context.cluster.namespace} (context ${this.context.cluster.context}) on ${this.path}`)
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => this.stop(`${signal}`, SIGNAL_GRACE_MS))
    this.checkTimer = setInterval(() => {
      if (!this.stillOurs()) this.stop('the socket was removed or replaced')
    }, SOCKET_CHECK_MS)
    this.armIdle()
    await done
  }

  /** Listen on the socket; a stale one (nobody answers) is replaced, a live one means another helper serves: exit. */
  private async listen(): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = createServer((socket) => this.accept(socket))
      const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
        server.once('error', resolve)
        server.listen(this.path, () => resolve(undefined))
      })
      if (!error) {
        chmodSync(this.path, 0o600)
        this.inode = lstatSync(this.path).ino
        this.server = server
        return true
      }
      if (error.code !== 'EADDRINUSE') throw error
      const live = await new Promise<boolean>((resolve) => {
        const probe = connect(this.path)
        probe.once('connect', () => {
          probe.destroy()
          resolve(true)
        })
        probe.once('error', () => resolve(false))
      })
      if (live) {
        log('another helper serves this socket; exiting')
        return false
      }
      log('replacing a stale socket')
      try {
        unlinkSync(this.path)
      } catch {
        // Someone else removed it first.
      }
    }
    throw new Error(`cannot listen on ${this.path}`)
  }

  private socketIsOurs(): boolean {
    try {
      return this.inode !== undefined && lstatSync(this.path).ino === this.inode
    } catch {
      return false
    }
  }

  /** Our socket is still at its path, and the instance's state dir still exists (clean removes it; the socket may live elsewhere). */
  private stillOurs(): boolean {
    return this.socketIsOurs() && existsSync(this.context.state.dir)
  }

  private armIdle(): void {
    clearTimeout(this.idleTimer)
    if (this.active > 0) return
    if (this.podMissing) {
      this.stop('the instance has no pod')
      return
    }
    this.idleTimer = setTimeout(() => this.stop(`idle for ${this.idleMs / 1000} s`), this.idleMs)
  }

  /** Stop serving; commands still running finish, or with `graceMs`, get that long. */
  private stop(why: string, graceMs?: number): void {
    if (graceMs !== undefined) {
      setTimeout(() => {
        log(`exiting with ${this.active} command(s) still running`)
        process.exit(0)
      }, graceMs).unref()
    }
    if (this.stopping) return
    this.stopping = true
    log(`stopping: ${why}`)
    clearTimeout(this.idleTimer)
    clearInterval(this.checkTimer)
    if (this.socketIsOurs()) {
      try {
        unlinkSync(this.path)
      } catch {
        // gone already
      }
    }
    this.server?.close()
    this.dropSpare()
    // Commands still running finish (see graceMs); their connections keep the process alive until then.
    this.finished()
    const wait = setInterval(() => {
      if (this.active === 0) {
        clearInterval(wait)
        process.exit(0)
      }
    }, 100)
  }

  private dropSpare(): void {
    const spare = this.spare
    this.spare = undefined
    if (spare) closeSpare(spare)
  }

  /** Open a spare exec in the user container of the pod with this UID. */
  private async openSpare(podUid: string): Promise<Spare> {
    const stdin = new PassThrough()
    const stdout = new Relay()
    const stderr = new Relay()
    let opened!: (session: ExecSession) => void
    const session = new Promise<ExecSession>((resolve) => (opened = resolve))
    const done = openWithRetry(() =>
      exec(userTarget(this.context), { command: SPARE_ARGV, stdin, stdout, stderr, onOpen: (s) => opened(s) }),
    )
    const first = await Promise.race([session, done.then((result) => ({ result }))])
    if ('result' in first) throw new Error(`the spare exec ended at once (${first.result.message ?? `status ${first.result.exitCode}`})`)
    const spare: Spare = { podUid, stdin, stdout, stderr, session: first, done, ended: false }
    void done.then(
      () => (spare.ended = true),
      () => (spare.ended = true),
    )
    return spare
  }

  /**
   * The spare for this pod, opened now if there is none ready. Claimed before any await, so
   * that two commands arriving together never get the same one.
   */
  private async takeSpare(podUid: string): Promise<Spare> {
    let spare = this.spare
    this.spare = undefined
    if (!spare && this.opening) {
      const opening = this.opening
      this.opening = undefined
      spare = await opening.catch(() => undefined)
    }
    if (spare) clearTimeout(spare.idle)
    if (spare && !spare.ended && spare.podUid === podUid) return spare
    if (spare && !spare.ended) {
      log(`pod UID changed (${spare.podUid} -> ${podUid}): dropping the spare`)
      closeSpare(spare)
    }
    return this.openSpare(podUid)
  }

  /** Keep an unused spare ready for the next command, for spareIdleMs; one is enough. */
  private keepSpare(spare: Spare): void {
    if (this.stopping || this.spare || spare.ended) {
      closeSpare(spare)
      return
    }
    this.spare = spare
    spare.idle = setTimeout(() => {
      if (this.spare === spare) this.dropSpare()
    }, this.spareIdleMs)
  }

  /** After a command: have the next spare ready. */
  private prepareSpare(podUid: string): void {
    if (this.stopping || this.spare || this.opening) return
    const opening = this.openSpare(podUid)
    this.opening = opening
    opening.then(
      (spare) => {
        // Claimed meanwhile by takeSpare, which awaits this very promise.
        if (this.opening !== opening) return
        this.opening = undefined
        this.keepSpare(spare)
      },
      (error: unknown) => {
        if (this.opening === opening) this.opening = undefined
        log(`could not open a spare: ${(error as Error).message}`)
      },
    )
  }

  private accept(socket: Socket): void {
    this.active++
    clearTimeout(this.idleTimer)
    let released = false
    const release = () => {
      if (released) return
      released = true
      this.active--
      if (this.stopping) return
      this.armIdle()
    }
    socket.once('close', release)
    socket.on('error', () => {
      // 'close' follows.
    })
    void this.serve(socket).catch((error: unknown) => {
      log(`internal error: ${(error as Error).stack ?? String(error)}`)
      socket.destroy()
    })
  }

  private async serve(socket: Socket): Promise<void> {
    const decoder = new FrameDecoder()
    const early: Array<{ type: number; payload: Buffer }> = []
    let spare: Spare | undefined
    let finished = false
    let onFrame: ((type: number, payload: Buffer) => void) | undefined
    const request = new Promise<MuxRequest | undefined>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        let frames
        try {
          frames = decoder.push(chunk)
        } catch {
          socket.destroy()
          resolve(undefined)
          return
        }
        for (const frame of frames) {
          if (frame.type === Frame.request) {
            try {
              resolve(JSON.parse(frame.payload.toString('utf8')) as MuxRequest)
            } catch {
              resolve(undefined)
            }
          } else if (onFrame) onFrame(frame.type, frame.payload)
          else early.push(frame)
        }
      })
      socket.once('close', () => {
        resolve(undefined)
        // The command's process ended (Ctrl-C, killed) before the command: abort it, as
        // the direct path's websocket closing with the process does.
        if (!finished && spare) spare.session.abort()
      })
    })
    const send = (frame: Buffer) => {
      if (!socket.destroyed) socket.write(frame)
    }
    const fail = (error: MuxError) => {
      finished = true
      send(encodeJsonFrame(Frame.error, error))
      socket.end()
    }

    const asked = await request
    if (!asked) return
    if (asked.protocol !== MUX_PROTOCOL || asked.key !== this.key || !Array.isArray(asked.command) || asked.command.length === 0) {
      fail({ message: `this helper serves key ${this.key} with protocol ${MUX_PROTOCOL}`, exitCode: ExitCode.internal, fallback: true })
      return
    }
    let podUid: string
    try {
      const pod = await requireRunningPod(this.context)
      podUid = pod.metadata?.uid ?? ''
      this.spareIdleMs = spareIdleMs(pod)
      spare = await this.takeSpare(podUid).catch(async (error: unknown) => {
        throw await execOpenError(error, this.context)
      })
    } catch (error) {
      if (error instanceof UserError && error.exitCode === ExitCode.notFound && /has no pod/.test(error.message)) this.podMissing = true
      fail(muxError(error))
      return
    }
    if (!supportsStdinClose(spare.session.protocol)) {
      // v4 can end stdin only by ending the exec: the command runs directly instead.
      closeSpare(spare)
      fail({ message: `the API server speaks ${spare.session.protocol}, not v5.channel.k8s.io`, exitCode: ExitCode.internal, fallback: true })
      return
    }
    if (socket.destroyed) {
      // The command's process is gone already: keep the spare for the next one.
      this.keepSpare(spare)
      return
    }

    // From here the command runs: say so before it can (see protocol.ts).
    send(encodeMuxFrame(Frame.started))
    const relayed = { [Frame.stdout]: 0, [Frame.stderr]: 0 }
    const relayTo = (type: typeof Frame.stdout | typeof Frame.stderr) => (chunk: Buffer, done: () => void) => {
      relayed[type] += chunk.length
      if (socket.destroyed || writeMuxData(socket, type, chunk)) return done()
      // The client reads slowly: wait for room, or for it to go away.
      const resume = () => {
        socket.off('drain', resume)
        socket.off('close', resume)
        done()
      }
      socket.on('drain', resume)
      socket.on('close', resume)
    }
    spare.stdout.target = relayTo(Frame.stdout)
    spare.stderr.target = relayTo(Frame.stderr)
    const stdin = spare.stdin
    stdin.write(encodeSpareHeader(asked.command))
    let full = false
    // Not reading (stdin backpressure), we would not see the client go away (its process
    // killed, Ctrl-C): a ping fails then, the socket closes, and the command is aborted.
    let ping: NodeJS.Timeout | undefined
    const stopPing = () => {
      clearInterval(ping)
      ping = undefined
    }
    socket.once('close', stopPing)
    onFrame = (type, payload) => {
      if (type === Frame.stdin) {
        if (!stdin.write(payload) && !full) {
          full = true
          socket.pause()
          ping = setInterval(() => send(encodeMuxFrame(Frame.ping)), PING_WHILE_PAUSED_MS)
          stdin.once('drain', () => {
            stopPing()
            full = false
            socket.resume()
          })
        }
      } else if (type === Frame.stdinEnd) stdin.end()
    }
    for (const frame of early.splice(0)) onFrame(frame.type, frame.payload)

    const result = await spare.done.catch((error: unknown) => ({ exitCode: 255, message: (error as Error).message }))
    // The command is over: input it did not read is dropped, and the socket is read again
    // (stdin backpressure may have paused it), or a client gone meanwhile would never be noticed.
    onFrame = () => {}
    stdin.resume()
    socket.resume()
    // Output the relays still hold goes out before the exit status (the client stops at it).
    await Promise.all([flushed(spare.stdout), flushed(spare.stderr)])
    this.prepareSpare(podUid)
    if (socket.destroyed) {
      finished = true
      return
    }
    try {
      const exitCode = await explainExecResult(this.context, result)
      finished = true
      // With TRAMPOLINE_MUX_LOG_COMMANDS=1 (the e2e): what each command sent, to tell a loss here from one below.
      if (process.env.TRAMPOLINE_MUX_LOG_COMMANDS === '1') log(`command …${asked.command.join(' ').slice(-60)}: exit ${exitCode}, stdout ${relayed[Frame.stdout]} B, stderr ${relayed[Frame.stderr]} B`)
      send(encodeJsonFrame(Frame.exit, { exitCode }))
      socket.end()
    } catch (error) {
      fail(muxError(error))
    }
  }
}

/** End an unused spare: its launcher reads EOF and exits 0; the exec closes. */
function closeSpare(spare: Spare): void {
  clearTimeout(spare.idle)
  spare.stdin.end()
  spare.session.abort()
}

/** Resolves once every chunk written to the relay has been handed on (or the relay failed). */
function flushed(relay: Relay): Promise<void> {
  return new Promise((resolve) => {
    relay.once('finish', () => resolve())
    relay.once('error', () => resolve())
    relay.end()
  })
}

/**
 * How long a spare may wait unused: 60 s, or a quarter of the pod's idle timeout
 * (TRAMPOLINE_IDLE_TIMEOUT in the user container, seconds, 0 = never) when that is shorter.
 */
export function spareIdleMs(pod: V1Pod): number {
  const env = pod.spec?.containers?.find((c) => c.name === USER_CONTAINER)?.env
  const timeout = Number(env?.find((e) => e.name === IDLE_TIMEOUT_ENV)?.value)
  if (!Number.isFinite(timeout) || timeout <= 0) return SPARE_IDLE_MS
  return Math.min(SPARE_IDLE_MS, Math.max(1000, Math.round(timeout * 1000 * SPARE_IDLE_SHARE)))
}

function muxError(error: unknown): MuxError {
  if (error instanceof UserError) return { message: error.message, hint: error.hint, exitCode: error.exitCode }
  const { text, exitCode } = formatError(error)
  log(`unexpected error: ${(error as Error)?.stack ?? String(error)}`)
  return { message: text.replace(/^trampoline: /, ''), exitCode }
}
