// A command in the user container attached to this process's stdio, as `shell` and
// `claude` need it: with a terminal on both ends, raw mode and window sizes (our TERM
// handed to the command); otherwise plain pipes for scripts. Resolves to the exit code.
import type { CommandContext } from './context.ts'
import { runInPod } from './pod/run.ts'
import { isInteractive, rawTerminal, releaseStdin } from './terminal.ts'

/** `commandFor(term)`: the remote argv; term is our TERM in a terminal session, else undefined. */
export async function runAttached(context: CommandContext, commandFor: (term: string | undefined) => string[]): Promise<number> {
  if (!isInteractive()) {
    return runInPod(context, {
      command: commandFor(undefined),
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
    }).finally(() => releaseStdin())
  }
  const terminal = rawTerminal()
  try {
    return await runInPod(context, {
      command: commandFor(process.env.TERM),
      tty: true,
      stdin: process.stdin,
      stdout: process.stdout,
      onOpen: (session) => terminal.attach(session),
    })
  } finally {
    terminal.restore()
    releaseStdin()
  }
}
