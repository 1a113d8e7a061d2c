// One command in the user container with plain pipes for stdio (no terminal): through the
// mux helper when it takes the command, else over an exec of our own. `shell` without a
// terminal and `store-stdio` both run commands this way.
import type { GlobalOptions } from '../context.ts'
import { disableMux, muxEnabled, runThroughMux } from './client.ts'
import { muxTarget } from './target.ts'
import { releaseStdin } from '../terminal.ts'

/**
 * Resolves to the command's exit code; failures to reach the pod throw (pod/run.ts's
 * explanations). Either way our stdin is let go at the end: a reader still waiting on it
 * would keep this process alive, and with it whoever waits for our stdout to close (the
 * local Nix, for store-stdio).
 */
export async function runPiped(options: GlobalOptions, command: string[]): Promise<number> {
  try {
    return await runPipedOnce(options, command)
  } finally {
    releaseStdin()
  }
}

async function runPipedOnce(options: GlobalOptions, command: string[]): Promise<number> {
  const stdio = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }
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
