// One place that knows what must be undone when the process is interrupted: open
// port-forwards, remote commands, raw terminal mode. The first SIGINT/SIGTERM/SIGHUP runs
// every registered cleanup and exits 128+signal; a second one exits at once.
import { constants } from 'node:os'

type Cleanup = () => void | Promise<void>

const cleanups = new Set<Cleanup>()
let installed = false
let interrupting = false

/** Register something to undo on interruption; returns the function that unregisters it. */
export function onInterrupt(cleanup: Cleanup): () => void {
  installSignalHandlers()
  cleanups.add(cleanup)
  return () => cleanups.delete(cleanup)
}

/** Run a block with a cleanup that happens on success, failure and interruption alike. */
export async function withCleanup<T>(cleanup: Cleanup, body: () => Promise<T>): Promise<T> {
  const unregister = onInterrupt(cleanup)
  try {
    return await body()
  } finally {
    unregister()
    await cleanup()
  }
}

export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 1)
}

async function runCleanups(): Promise<void> {
  const pending = [...cleanups].reverse()
  cleanups.clear()
  for (const cleanup of pending) {
    try {
      await cleanup()
    } catch {
      // Best effort: one failed cleanup must not stop the others.
    }
  }
}

function installSignalHandlers(): void {
  if (installed) return
  installed = true
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      const code = signalExitCode(signal)
      if (interrupting) process.exit(code)
      interrupting = true
      // SIGHUP is how ssh ends a ProxyCommand: nothing to say then.
      if (signal !== 'SIGHUP') process.stderr.write(`\ntrampoline: interrupted (${signal}), cleaning up...\n`)
      const deadline = setTimeout(() => process.exit(code), 5000)
      deadline.unref()
      void runCleanups().finally(() => process.exit(code))
    })
  }
}
