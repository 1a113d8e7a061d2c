// Errors a user can hit, each with what happened, what to do next, and an exit code
// scripts can rely on. Anything else that escapes is a bug and exits with `internal`.

export const ExitCode = {
  ok: 0,
  /** The remote command itself failed; its own code passes through when known. */
  failure: 1,
  usage: 2,
  /** No usable kubeconfig, unreachable cluster, or credentials rejected. */
  cluster: 3,
  /** RBAC said no. */
  forbidden: 4,
  /** The instance (pod, PVC...) does not exist or is not running: run setup. */
  notFound: 5,
  /** The pod could not start (unschedulable, image, volume...). */
  podFailed: 6,
  /** Local precondition: not a git repo, dirty tree, missing tool. */
  local: 7,
  /** The pod's workspace changed since the last push: a push would overwrite it, or a pull conflicts. */
  podChanges: 8,
  internal: 70,
  /** Interrupted by a signal: 128 + signal number, as shells do. */
  interrupted: 130,
} as const

export class UserError extends Error {
  readonly hint?: string
  readonly exitCode: number

  constructor(message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause })
    this.name = 'UserError'
    this.hint = options.hint
    this.exitCode = options.exitCode ?? ExitCode.failure
  }
}

/** A remote command ran and exited non-zero: not our error, so no message, just its code. */
export class RemoteExit extends Error {
  readonly exitCode: number

  constructor(exitCode: number) {
    super(`remote command exited with ${exitCode}`)
    this.name = 'RemoteExit'
    this.exitCode = exitCode
  }
}

export function formatError(error: unknown): { text: string; exitCode: number } {
  if (error instanceof RemoteExit) return { text: '', exitCode: error.exitCode }
  if (error instanceof UserError) {
    const hint = error.hint ? `\n  ${error.hint}` : ''
    return { text: `trampoline: ${error.message}${hint}`, exitCode: error.exitCode }
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error)
  return {
    text: `trampoline: internal error (please report it):\n${detail}`,
    exitCode: ExitCode.internal,
  }
}
