// The pod's end of a FIFO bridge (bridge.ts): the store program in the user container (the
// same untrusted user as the general path), over an exec this process opens at once, while
// the local Nix starts. The program waits for a go line: the caller sends it when the paths
// are signed, so Nix's first query already sees the signatures.
import { PassThrough } from 'node:stream'
import type { CommandContext } from '../context.ts'
import { exec, type ExecResult, type ExecSession } from '../kube/exec.ts'
import { execOpenError, explainExecResult, openWithRetry } from '../pod/run.ts'
import { userTarget } from '../pod/pods.ts'
import type { FifoBridge } from './bridge.ts'

/** Exit code of the gate when no go line came (the caller gave up before the copy began). */
export const NO_GO_EXIT = 125

/**
 * sh: wait for the go line, then run the store program ("$@" after $1 and $2) with a
 * watchdog. A client that ends without a word (SIGKILL, a dropped connection) never ends
 * the program's stdin, and Kubernetes keeps an exec's process after its connection is
 * gone: stuck, it would keep the pod busy for ever (the idle monitor counts execs). So the
 * program is stopped once its I/O (/proc/PID/io) stood still for $2 checks $1 s apart; a
 * live copy moves bytes all the time.
 */
export const GATE_SCRIPT = [
  `IFS= read -r go && [ "$go" = go ] || exit ${NO_GO_EXIT}`,
  'every=$1 checks=$2; shift 2',
  // A background job's stdin is /dev/null unless it is given one: keep ours on fd 3 for it.
  'exec 3<&0',
  '"$@" <&3 3<&- &',
  'p=$!',
  '(',
  // Its sleep goes with it, and holds none of the exec's pipes (they would end only after
  // it). A TERM that lands while the sleep is still being forked can be lost in the child:
  // then that sleep alone ends on its own, `every` seconds at most later.
  '  trap \'kill $! 2>/dev/null; exit 0\' TERM',
  '  last= still=0',
  '  while sleep "$every" </dev/null >/dev/null 2>&1 & wait $!; do',
  '    [ -r /proc/$p/io ] || exit 0',
  '    now=',
  '    while IFS= read -r l; do case $l in rchar:*|wchar:*) now="$now ${l#*: }";; esac; done </proc/$p/io',
  '    if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; last=$now; fi',
  '    if [ "$still" -ge "$checks" ]; then',
  '      echo "trampoline: $1 moved no byte in $checks checks $every s apart: its client is gone; stopping it" >&2',
  '      kill "$p"; exit 0',
  '    fi',
  '  done',
  ') <&- &',
  'w=$!',
  'wait "$p"; s=$?',
  'kill "$w" 2>/dev/null',
  'exit "$s"',
].join('\n')

/** The watchdog's pace: a check every 5 s, and 10 minutes without a byte is a dead client. */
const STALL_CHECK_SECONDS = 5
const STALL_CHECKS = 120

/** How long the program gets to end by itself once Nix is done, before the exec is cut. */
const END_GRACE_MS = 5000

export interface BridgeService {
  /** Settles when the exec ends (or could not open: an explained error). */
  ended: Promise<ExecResult>
  /** Start serving: the program runs and Nix's bytes flow. */
  go(): void
  /** Nix is done: end the program's stdin and wait for the exec to end. */
  finish(): Promise<ExecResult | Error>
}

export function serveBridge(context: CommandContext, bridge: FifoBridge, program: readonly string[]): BridgeService {
  const stdin = new PassThrough()
  let session: ExecSession | undefined
  const ended = openWithRetry(() =>
    exec(userTarget(context), {
      command: ['sh', '-c', GATE_SCRIPT, 'trampoline-store', String(STALL_CHECK_SECONDS), String(STALL_CHECKS), ...program],
      stdin,
      stdout: bridge.toNix,
      // As on the general path (store-stdio): what the pod says shows where Nix shows ssh's.
      stderr: process.stderr,
      onOpen: (opened) => (session = opened),
    }),
  ).catch(async (error: unknown) => {
    throw await execOpenError(error, context)
  })
  ended.catch(() => {})
  let going = false
  return {
    ended,
    go() {
      // Not after finish(): Nix may be gone before the signing ends.
      if (going || stdin.writableEnded) return
      going = true
      stdin.write('go\n')
      bridge.fromNix.pipe(stdin, { end: false })
    },
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
 * One Nix command over the bridge: serve it from the pod once `ready` (the signing)
 * resolves, and end the exec when Nix exits. `runNix` gets a signal that stops Nix when
 * there is nothing left to wait for: the signing failed, or the exec ended under it.
 * Which error wins: the signing's, then a lost or refused exec (when Nix failed), then Nix's.
 */
export async function runOverBridge(
  context: CommandContext,
  bridge: FifoBridge,
  program: readonly string[],
  ready: Promise<void>,
  runNix: (signal: AbortSignal) => Promise<unknown>,
): Promise<void> {
  const service = serveBridge(context, bridge, program)
  const stop = new AbortController()
  ready.then(() => service.go(), () => stop.abort())
  service.ended.then(
    () => stop.abort(),
    () => stop.abort(),
  )
  const nix = await runNix(stop.signal).then(
    () => undefined,
    (error: unknown) => ({ error }),
  )
  const ended = await service.finish()
  await ready
  if (!nix) return
  if (ended instanceof Error) throw ended
  await explainExecResult(context, ended)
  throw nix.error
}
