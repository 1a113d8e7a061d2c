// The command side of the mux helper (scripts/mux/server.ts): `shell -- cmd` and `sh -c`
// hand their command to a per-instance helper over a private Unix socket instead of
// loading @kubernetes/client-node and opening an exec of their own; the helper keeps the
// cluster connection and a spare exec ready. This module must not load client-node (that
// alone costs more than the whole command through the helper).
//
// Started on demand: no socket, or a stale one (nobody listening), starts the helper
// (`trampoline shell --mux-serve`, detached) and waits for it. Whenever the helper cannot
// take the command before anything ran (it fails to start, it serves another key, the
// server speaks an old channel protocol), runThroughMux answers undefined and the caller
// runs the command itself: the helper only ever makes a command faster, never different.
import { spawn } from 'node:child_process'
import { closeSync, lstatSync, mkdirSync, openSync, statSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter } from 'node:path'
import { ExitCode, UserError } from '../errors.ts'
import { BROKEN_PIPE_EXIT, onBrokenPipe } from '../kube/broken-pipe.ts'
import type { ExecOptions } from '../kube/exec.ts'
import type { Writable } from 'node:stream'
import { debug } from '../log.ts'
import { packageVersion } from '../package-dir.ts'
import { selfCommand } from '../self.ts'
import { fallbackSocketDir, muxDisabledByEnv, muxIdentity, muxKey, muxSocketPath } from './key.ts'
import type { MuxTarget } from './target.ts'
import { encodeJsonFrame, encodeMuxFrame, Frame, FrameDecoder, MUX_PROTOCOL, writeMuxData, type MuxError, type MuxRequest } from './protocol.ts'

/** How long a command waits for a helper it started to listen before running on its own. */
const START_TIMEOUT_MS = 20_000
const START_POLL_MS = 15
const LOG_LIMIT = 1024 * 1024

let disabledByFlag = false

/** `shell --no-mux`. */
export function disableMux(): void {
  disabledByFlag = true
}

export function muxEnabled(env = process.env): boolean {
  return !disabledByFlag && !muxDisabledByEnv(env)
}

export interface MuxEndpoint {
  key: string
  socket: string
}

/** The helper's key and socket for this command's cluster and instance; undefined: no helper (disabled, in-cluster config). */
export function muxEndpoint(context: MuxTarget, env = process.env): MuxEndpoint | undefined {
  const { cluster, names } = context
  if (!cluster.selection) return undefined
  const identity = muxIdentity(cluster.selection, {
    server: cluster.server,
    namespace: cluster.namespace,
    instance: names.instance,
    pod: names.pod,
    version: packageVersion(),
  })
  const key = muxKey(identity)
  const uid = process.getuid?.() ?? 0
  const { path, fallback } = muxSocketPath(context.state.dir, key, fallbackSocketDir(env, tmpdir(), uid))
  if (fallback && !privateDir(path.slice(0, path.lastIndexOf('/')), uid)) return undefined
  return { key, socket: path }
}

/** A 0700 directory of ours (created if missing), not a symlink: else no helper. */
function privateDir(dir: string, uid: number): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const stat = lstatSync(dir)
    return stat.isDirectory() && stat.uid === uid && (stat.mode & 0o077) === 0
  } catch {
    return false
  }
}

/**
 * Run `options.command` in the user container through the helper; resolves to its exit
 * code, or undefined when the helper cannot take it (nothing ran: run it directly).
 */
export async function runThroughMux(context: MuxTarget, options: ExecOptions): Promise<number | undefined> {
  if (!muxEnabled()) return undefined
  let endpoint: MuxEndpoint | undefined
  try {
    endpoint = muxEndpoint(context)
  } catch (error) {
    debug(`mux: no helper (${(error as Error).message})`)
    return undefined
  }
  if (!endpoint) return undefined
  const socket = await connectOrStart(context, endpoint)
  if (!socket) return undefined
  return relay(socket, endpoint.key, options)
}

function connectOnce(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path)
    socket.once('connect', () => {
      socket.off('error', reject)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

async function connectOrStart(context: MuxTarget, endpoint: MuxEndpoint): Promise<Socket | undefined> {
  try {
    return await connectOnce(endpoint.socket)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ECONNREFUSED') {
      debug(`mux: cannot reach the helper at ${endpoint.socket} (${code}); running directly`)
      return undefined
    }
  }
  let exited: number | null | undefined
  try {
    const child = startHelper(context, endpoint)
    child.once('exit', (code) => (exited = code))
    child.once('error', () => (exited = -1))
  } catch (error) {
    debug(`mux: cannot start the helper (${(error as Error).message}); running directly`)
    return undefined
  }
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    try {
      return await connectOnce(endpoint.socket)
    } catch {
      // Not listening yet. A helper that exits 0 found another one serving: keep trying.
    }
    if ((exited !== undefined && exited !== 0) || Date.now() > deadline) {
      debug(`mux: the helper did not start (${exited === undefined ? 'timed out' : `exit ${exited}`}; see ${context.state.path('mux.log')}); running directly`)
      return undefined
    }
    await new Promise((resolve) => setTimeout(resolve, START_POLL_MS))
  }
}

/** `trampoline shell --mux-serve` for this instance, detached, its output in the state dir's mux.log. */
function startHelper(context: MuxTarget, endpoint: MuxEndpoint) {
  const { cluster, names } = context
  context.state.ensure()
  const logPath = context.state.path('mux.log')
  // A few lines per helper; start afresh rather than grow without bound.
  const tooBig = (() => {
    try {
      return statSync(logPath).size > LOG_LIMIT
    } catch {
      return false
    }
  })()
  const log = openSync(logPath, tooBig ? 'w' : 'a', 0o600)
  try {
    const [command, ...prefix] = selfCommand()
    const args = [...prefix, 'shell', '--mux-serve', '--context', cluster.context, '--namespace', cluster.namespace, '--name', names.instance]
    const child = spawn(command, args, {
      detached: true,
      stdio: ['ignore', log, log],
      cwd: '/',
      env: {
        ...process.env,
        // The files this command read, so that the helper selects the same entries.
        ...(cluster.kubeconfigFiles?.length ? { KUBECONFIG: cluster.kubeconfigFiles.join(delimiter) } : {}),
        TRAMPOLINE_MUX_KEY: endpoint.key,
        TRAMPOLINE_MUX_SOCKET: endpoint.socket,
      },
    })
    child.unref()
    return child
  } finally {
    closeSync(log)
  }
}

/** The request, then stdio both ways until EXIT or ERROR. */
function relay(socket: Socket, key: string, options: ExecOptions): Promise<number | undefined> {
  return new Promise<number | undefined>((resolve, reject) => {
    const decoder = new FrameDecoder()
    let started = false
    let settled = false
    const settle = (outcome: () => void) => {
      if (settled) return
      settled = true
      outcome()
    }
    const request: MuxRequest = { protocol: MUX_PROTOCOL, key, command: options.command }
    socket.write(encodeJsonFrame(Frame.request, request))

    // Output waits for the terminal or pipe: stop reading the helper until it drains.
    const waiting = new Set<NodeJS.WritableStream>()
    const deliver = (target: NodeJS.WritableStream | undefined, payload: Buffer) => {
      if (target && !target.write(payload) && !waiting.has(target)) {
        waiting.add(target)
        socket.pause()
        target.once('drain', () => {
          waiting.delete(target)
          if (waiting.size === 0) socket.resume()
        })
      }
    }
    const startStdin = () => {
      const stdin = options.stdin
      if (!stdin) {
        socket.write(encodeMuxFrame(Frame.stdinEnd))
        return
      }
      // Read stdin only now: before STARTED the command may still be run directly.
      let full = false
      stdin.on('data', (chunk: Buffer) => {
        if (settled || socket.destroyed) return
        if (!writeMuxData(socket, Frame.stdin, chunk) && !full) {
          full = true
          stdin.pause()
          socket.once('drain', () => {
            full = false
            stdin.resume()
          })
        }
      })
      const end = () => {
        if (!settled && !socket.destroyed) socket.write(encodeMuxFrame(Frame.stdinEnd))
      }
      stdin.once('end', end)
      stdin.once('error', end)
    }

    // Our reader went away (`| head -1`): end the command as a local one would end, by SIGPIPE.
    const unwatch = [options.stdout, options.stderr].filter((w): w is Writable => !!w).map((w) =>
      onBrokenPipe(w, () => {
        socket.destroy()
        settle(() => resolve(BROKEN_PIPE_EXIT))
      }),
    )
    socket.once('close', () => unwatch.forEach((stop) => stop()))

    socket.on('data', (chunk: Buffer) => {
      let frames
      try {
        frames = decoder.push(chunk)
      } catch (error) {
        socket.destroy()
        settle(() => reject(lostHelper(started, (error as Error).message)))
        return
      }
      for (const { type, payload } of frames) {
        if (type === Frame.started) {
          started = true
          startStdin()
        } else if (type === Frame.stdout) deliver(options.stdout, payload)
        else if (type === Frame.stderr) deliver(options.stderr, payload)
        else if (type === Frame.exit) {
          const { exitCode } = JSON.parse(payload.toString('utf8')) as { exitCode: number }
          socket.end()
          settle(() => resolve(exitCode))
        } else if (type === Frame.error) {
          const error = JSON.parse(payload.toString('utf8')) as MuxError
          socket.end()
          if (error.fallback && !started) {
            debug(`mux: the helper did not take the command (${error.message}); running directly`)
            settle(() => resolve(undefined))
          } else {
            settle(() => reject(new UserError(error.message, { hint: error.hint, exitCode: error.exitCode })))
          }
        }
      }
    })
    socket.on('error', () => {
      // 'close' follows and decides.
    })
    socket.on('close', () => {
      if (settled) return
      if (!started) {
        // The helper went away before it ran anything: run the command directly.
        debug('mux: the helper closed the connection before starting the command; running directly')
        settle(() => resolve(undefined))
      } else {
        settle(() => reject(lostHelper(true, 'the connection closed')))
      }
    })
  })
}

function lostHelper(started: boolean, why: string): UserError {
  return new UserError(`lost the local mux helper ${started ? 'during the command' : 'before the command started'} (${why})`, {
    hint: started
      ? 'The command may or may not have finished in the pod. Try again (TRAMPOLINE_MUX=0 runs commands without the helper).'
      : 'Try again, or run without the helper: TRAMPOLINE_MUX=0.',
    exitCode: ExitCode.cluster,
  })
}
