// One command in the user container with plain pipes for stdio (no terminal): through the
// mux helper when it takes the command, else over an exec of our own. `shell` without a
// terminal and `store-stdio` both run commands this way.
import { fstatSync, statSync } from 'node:fs'
import { PassThrough, type Readable, type Writable } from 'node:stream'
import type { GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { BROKEN_PIPE_EXIT } from '../kube/broken-pipe.ts'
import { disableMux, muxEnabled, runThroughMux } from './client.ts'
import { EndTagStripper, endTagArgv, endTagHeader, newEndTag } from './end-marker.ts'
import { muxTarget } from './target.ts'
import { releaseStdin } from '../terminal.ts'

export interface PipedOptions {
  /**
   * Prove the output arrived whole (scripts/mux/end-marker.ts): a cut-short stdout or
   * stderr is an error instead of a silent loss. Not for protocols with checks of their own
   * (store-stdio), which need every byte passed on at once.
   */
  checkComplete?: boolean
}

/**
 * Resolves to the command's exit code; failures to reach the pod throw (pod/run.ts's
 * explanations). Either way our stdin is let go at the end: a reader still waiting on it
 * would keep this process alive, and with it whoever waits for our stdout to close (the
 * local Nix, for store-stdio).
 */
export async function runPiped(options: GlobalOptions, command: string[], piped: PipedOptions = {}): Promise<number> {
  try {
    if (!piped.checkComplete) return await runPipedOnce(options, command, process.stdin, process.stdout, process.stderr)
    return await runChecked(options, command)
  } finally {
    releaseStdin()
  }
}

/** runPiped with the end tags of scripts/mux/end-marker.ts. */
async function runChecked(options: GlobalOptions, command: string[]): Promise<number> {
  const tag = newEndTag()
  const stdout = new EndTagStripper(process.stdout, tag)
  const stderr = new EndTagStripper(process.stderr, tag)
  // What the pod reads: our stdin, ended by us once both tags are in (the pod waits for
  // that end before its exec may end). A /dev/null stdin stays here: the pod gives the
  // command its own.
  const nullStdin = isNullStdin()
  const stdin = new PassThrough()
  stdin.write(endTagHeader(command))
  if (!nullStdin) process.stdin.pipe(stdin)
  const bothSeen = () => {
    if (!stdout.seen || !stderr.seen) return
    if (!nullStdin) process.stdin.unpipe(stdin)
    stdin.end()
  }
  stdout.onSeen = bothSeen
  stderr.onSeen = bothSeen

  let exitCode: number | undefined
  let failure: unknown
  try {
    exitCode = await runPipedOnce(options, endTagArgv(tag, nullStdin), stdin, stdout, stderr)
  } catch (error) {
    failure = error
  }
  await Promise.all([ended(stdout), ended(stderr)])
  // Everything arrived: the tag's status is the command's, even if the exec's own was lost after it.
  if (stdout.seen && stderr.seen && stdout.status !== undefined) return stdout.status
  if (failure) throw failure
  if (exitCode === BROKEN_PIPE_EXIT && (stdout.destroyed || stderr.destroyed)) return exitCode
  const lost = [!stdout.seen && 'stdout', !stderr.seen && 'stderr'].filter(Boolean).join(' and ')
  throw new UserError(`the cluster cut the command's ${lost || 'exit status'} short: its end never arrived, though the pod reported exit ${exitCode}`, {
    hint:
      'The command ran to its end in the pod; only output was lost on the way (a Kubernetes fault with slow readers: kubernetes/kubernetes#124571).\n' +
      'Run it again if that is safe, or write its output to a file in the pod and fetch that.',
    exitCode: ExitCode.cluster,
  })
}

/** Our stdin is /dev/null (or closed): nothing to send, and the pod can stand in for it. */
function isNullStdin(): boolean {
  try {
    const stdin = fstatSync(0)
    return stdin.isCharacterDevice() && stdin.rdev === statSync('/dev/null').rdev
  } catch {
    return true
  }
}

/** Every byte written to the stripper has reached its target (or the target failed). */
function ended(stream: EndTagStripper): Promise<void> {
  if (stream.destroyed || stream.writableFinished) return Promise.resolve()
  return new Promise((resolve) => {
    stream.once('finish', () => resolve())
    stream.once('close', () => resolve())
    stream.once('error', () => resolve())
    stream.end()
  })
}

async function runPipedOnce(options: GlobalOptions, command: string[], stdin: Readable, stdout: Writable, stderr: Writable): Promise<number> {
  const stdio = { stdin, stdout, stderr }
  if (muxEnabled()) {
    const target = muxTarget(options)
    const exitCode = target && (await runThroughMux(target, { command, ...stdio }))
    if (exitCode !== undefined) return exitCode
    // The helper did not take it and nothing ran: the direct path, without trying the helper again.
    disableMux()
  }
  // Loaded only now: with @kubernetes/client-node, they cost more than a command through the helper.
  const [{ commandContext }, { requireRunningPod }, { runInPod }] = await Promise.all([
    import('../context.ts'),
    import('../pod/pods.ts'),
    import('../pod/run.ts'),
  ])
  const context = commandContext(options)
  await requireRunningPod(context)
  return runInPod(context, { command, ...stdio })
}
