// Logging to stderr so stdout stays clean for --json and for the `proxy` byte stream.

export type Verbosity = 'quiet' | 'normal' | 'verbose'

let verbosity: Verbosity = 'normal'

export function setVerbosity(level: Verbosity): void {
  verbosity = level
}

export function info(message: string): void {
  if (verbosity !== 'quiet') process.stderr.write(`${message}\n`)
}

export function debug(message: string): void {
  if (verbosity === 'verbose') process.stderr.write(`[debug] ${message}\n`)
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`)
}

/** Progress lines are for people watching a terminal, never for CI logs. */
export function showsProgress(): boolean {
  return verbosity !== 'quiet' && process.stderr.isTTY === true && !process.env.CI
}
