// The local terminal during an interactive exec: raw mode so every key (Ctrl-C included)
// goes to the pod, window size changes forwarded, and the terminal given back as it was on
// every way out: normal exit, error, or a signal (through cleanup.ts).
import { onInterrupt } from './cleanup.ts'
import type { ExecSession } from './kube/exec.ts'

export interface RawTerminal {
  /** Send the current size now and on every resize. */
  attach(session: ExecSession): void
  /** Leave raw mode, stop reading stdin. Safe to call more than once. */
  restore(): void
}

export function rawTerminal(stdin: NodeJS.ReadStream = process.stdin, stdout: NodeJS.WriteStream = process.stdout): RawTerminal {
  let session: ExecSession | undefined
  const sendSize = () => {
    if (session && stdout.columns && stdout.rows) session.resize(stdout.columns, stdout.rows)
  }
  if (stdin.isTTY) stdin.setRawMode(true)
  let restored = false
  const restore = () => {
    if (restored) return
    restored = true
    unregister()
    stdout.off('resize', sendSize)
    if (stdin.isTTY) stdin.setRawMode(false)
    stdin.pause()
  }
  const unregister = onInterrupt(() => {
    session?.abort()
    restore()
  })
  return {
    attach(open) {
      session = open
      sendSize()
      stdout.on('resize', sendSize)
    },
    restore,
  }
}

/** An interactive session needs a terminal on both ends. */
export function isInteractive(stdin: NodeJS.ReadStream = process.stdin, stdout: NodeJS.WriteStream = process.stdout): boolean {
  return stdin.isTTY === true && stdout.isTTY === true
}

/**
 * Stop reading stdin once the remote command has ended. The exec pump is still waiting in
 * a read, and pause() does not cancel that: only destroy() lets the process exit now
 * instead of at the next keypress or the end of the pipe.
 */
export function releaseStdin(stdin: NodeJS.ReadStream = process.stdin): void {
  stdin.destroy()
}
