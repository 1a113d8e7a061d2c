// The pod's end of a FIFO bridge (bridge.ts): one exec in the nix-daemon container, opened
// at once while the local Nix starts, that first checks and signs the paths to copy
// (pod/daemon.ts's CHECK_AND_SIGN_SCRIPT) and then serves the store program. Signing
// needs root there, and so it rides the same exec: no second exec on the way, and Nix's
// first query already sees the signatures. Serving as root in that container gives no one
// anything new: the client is the local Nix of a user who may exec there (root) anyway,
// it only reads, and it checks the signatures itself. The user container is not involved.
import { PassThrough, Writable } from 'node:stream'
import type { CommandContext } from '../context.ts'
import { exec, type ExecResult, type ExecSession } from '../kube/exec.ts'
import { execOpenError, explainExecResult, openWithRetry } from '../pod/run.ts'
import { containerTarget } from '../pod/pods.ts'
import { DAEMON_CONTAINER } from '../pod/contract.ts'
import { CHECK_AND_SIGN_SCRIPT, notInPodStore, signArgs, signingFailed, signInput } from '../pod/daemon.ts'
import type { UserError } from '../errors.ts'
import type { FifoBridge } from './bridge.ts'
import { STALL_CHECK_SECONDS, STALL_CHECKS, WATCHED_FUNCTION } from '../pod/watchdog.ts'

/** How the serve script reports on stderr a failed check or signing (lines the CLI takes out). */
export const SIGN_REPORT = 'trampoline-sign:'

/**
 * sh: $1 the check-and-sign script, run with $2 $3 (key, mode) and the paths ($4) on its
 * stdin; if it fails, report (SIGN_REPORT lines: each path the store lacks, then the exit)
 * and exit with its status. Then run the store program ("$@" after $5 and $6) under the
 * watchdog (pod/watchdog.ts: stopped once its I/O stood still for $6 checks $5 s apart).
 * Nix's bytes wait in the pipe meanwhile: nothing before the program reads stdin.
 */
export const SERVE_SCRIPT = [
  WATCHED_FUNCTION,
  's=0',
  'out=$(printf %s "$4" | sh -c "$1" trampoline-sign "$2" "$3") || s=$?',
  'if [ "$s" -ne 0 ]; then',
  `  [ "$s" -ne 3 ] || printf '%s\\n' "$out" | while IFS= read -r p; do [ -z "$p" ] || echo "${SIGN_REPORT} lacks $p"; done >&2`,
  `  echo "${SIGN_REPORT} exit $s" >&2`,
  '  exit "$s"',
  'fi',
  'every=$5 checks=$6; shift 6',
  'watched "$every" "$checks" "$@"',
].join('\n')

/** The serve script's argv: check and sign `paths` (with `sign`), then serve `program`. */
export function serveArgv(paths: string[], sign: boolean, program: readonly string[], every = STALL_CHECK_SECONDS, checks = STALL_CHECKS): string[] {
  return ['sh', '-c', SERVE_SCRIPT, 'trampoline-store', CHECK_AND_SIGN_SCRIPT, ...signArgs({ sign }), signInput(paths), String(every), String(checks), ...program]
}

/** How long the program gets to end by itself once Nix is done, before the exec is cut. */
const END_GRACE_MS = 5000

/**
 * The exec's stderr: SIGN_REPORT lines are kept (failure() turns them into the error),
 * everything else goes on to `out` as it comes, a line at a time.
 */
export class SignReport extends Writable {
  private readonly lacking: string[] = []
  private exitCode: number | undefined
  private partial = ''
  private readonly out: NodeJS.WritableStream

  constructor(out: NodeJS.WritableStream) {
    super()
    this.out = out
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const lines = (this.partial + chunk.toString('utf8')).split('\n')
    this.partial = lines.pop()!
    for (const line of lines) this.line(line)
    callback()
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.partial) this.line(this.partial)
    this.partial = ''
    callback()
  }

  /** The check's or the signing's error, if the exec reported one. */
  failure(): UserError | undefined {
    if (this.lacking.length) return notInPodStore(this.lacking)
    if (this.exitCode !== undefined) return signingFailed(this.exitCode, 'see the message above')
    return undefined
  }

  private line(line: string): void {
    if (!line.startsWith(`${SIGN_REPORT} `)) {
      this.out.write(`${line}\n`)
      return
    }
    const [what, ...rest] = line.slice(SIGN_REPORT.length + 1).split(' ')
    if (what === 'lacks') this.lacking.push(rest.join(' '))
    else if (what === 'exit') this.exitCode = Number(rest[0])
  }
}

export interface BridgeService {
  /** Settles when the exec ends (or could not open: an explained error). */
  ended: Promise<ExecResult>
  /** The check's or the signing's error, once the exec has ended. */
  failure(): UserError | undefined
  /** Nix is done: end the program's stdin and wait for the exec to end. */
  finish(): Promise<ExecResult | Error>
}

export function serveBridge(context: CommandContext, bridge: FifoBridge, program: readonly string[], request: { paths: string[]; sign: boolean }): BridgeService {
  const stdin = new PassThrough()
  const report = new SignReport(process.stderr)
  let session: ExecSession | undefined
  const ended = openWithRetry(() =>
    exec(containerTarget(context, DAEMON_CONTAINER), {
      command: serveArgv(request.paths, request.sign, program),
      stdin,
      stdout: bridge.toNix,
      stderr: report,
      onOpen: (opened) => (session = opened),
    }),
  ).catch(async (error: unknown) => {
    throw await execOpenError(error, context)
  })
  ended.catch(() => {})
  bridge.fromNix.pipe(stdin, { end: false })
  return {
    ended,
    failure: () => report.failure(),
    async finish() {
      bridge.fromNix.unpipe(stdin)
      stdin.end()
      const grace = setTimeout(() => session?.abort(), END_GRACE_MS)
      try {
        return await ended
      } catch (error) {
        return error as Error
      } finally {
        clearTimeout(grace)
      }
    },
  }
}

/**
 * One Nix command over the bridge: the exec checks, signs and serves while `runNix` starts
 * it; `runNix` gets a signal that stops Nix when the exec ended under it (the check or the
 * signing failed, the connection broke). Which error wins: the check's or the signing's,
 * then a lost or refused exec (when Nix failed), then Nix's.
 */
export async function runOverBridge(
  context: CommandContext,
  bridge: FifoBridge,
  program: readonly string[],
  request: { paths: string[]; sign: boolean },
  runNix: (signal: AbortSignal) => Promise<unknown>,
): Promise<void> {
  const service = serveBridge(context, bridge, program, request)
  const stop = new AbortController()
  service.ended.then(
    () => stop.abort(),
    () => stop.abort(),
  )
  const nix = await runNix(stop.signal).then(
    () => undefined,
    (error: unknown) => ({ error }),
  )
  const ended = await service.finish()
  const refused = service.failure()
  if (refused) throw refused
  if (!nix) return
  if (ended instanceof Error) throw ended
  await explainExecResult(context, ended)
  throw nix.error
}
