// A command's local output whose reader went away (`trampoline shell -- yes | head -1`):
// the command ends as a local one would, by SIGPIPE, instead of an unhandled EPIPE
// crashing the CLI. No imports: the mux client's fast path uses it too.
import type { Writable } from 'node:stream'

/** What a command whose output reader went away gets locally: killed by SIGPIPE (128 + 13), as in a shell pipeline. */
export const BROKEN_PIPE_EXIT = 141

const watchedOutputs = new WeakSet<Writable>()

/**
 * Calls `onBrokenPipe` when `output` can no longer be written because its reader closed
 * it (`trampoline shell -- yes | head -1`), instead of an unhandled EPIPE crashing the
 * process. The listener stays: writes still queued fail the same way later.
 */
export function onBrokenPipe(output: Writable, onBrokenPipe: () => void): () => void {
  let active = true
  const listener = (error: NodeJS.ErrnoException) => {
    if (active && (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED')) onBrokenPipe()
  }
  output.on('error', listener)
  if (!watchedOutputs.has(output)) {
    watchedOutputs.add(output)
    output.on('error', () => {
      // Handled by whoever listens now; never an unhandled 'error' event.
    })
  }
  return () => {
    active = false
    output.off('error', listener)
  }
}
