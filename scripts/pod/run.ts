// Commands in the user container, as the push/build/shell commands need them: exec with
// the ways it can fail turned into UserErrors, and the remote exit code handed back.
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError } from '../kube/client.ts'
import { UpgradeError } from '../kube/channel.ts'
import { exec, execCapture, type ExecOptions, type ExecResult } from '../kube/exec.ts'
import { runThroughMux } from '../mux/client.ts'
import { containerTarget, explainLostExec, podGoneReason, requireRunningPod, type PodContainer } from './pods.ts'
import { USER_CONTAINER } from './contract.ts'

/**
 * Why exec (or, with `doing`/`subresource`, port-forward) could not even start: RBAC, a
 * vanished pod, an unreachable API server.
 */
export function explainExecOpen(error: unknown, context: CommandContext, doing = `exec in pod ${context.names.pod}`, subresource = 'pods/exec'): Error {
  if (error instanceof UpgradeError) {
    if (error.statusCode === 403) {
      return new UserError(`forbidden: cannot ${doing} in namespace "${context.cluster.namespace}" (${error.message})`, {
        hint: `Ask for the RBAC rights "get" and "create" on ${subresource} there (container/rbac.yaml has them; trampoline doctor checks).`,
        exitCode: ExitCode.forbidden,
        cause: error,
      })
    }
    if (error.statusCode === 404) {
      return new UserError(`pod ${context.names.pod} went away (${error.message})`, {
        hint: `Run: trampoline setup --name ${context.names.instance}`,
        exitCode: ExitCode.notFound,
        cause: error,
      })
    }
    return new UserError(`the cluster refused to ${doing}: ${error.message}`, { exitCode: ExitCode.cluster, cause: error })
  }
  return explainApiError(error, context.cluster, doing)
}

/**
 * The API server turned the exec down (400 "container not found", 404...): usually the pod
 * stopped or went away since we last looked. requireRunningPod says precisely how.
 */
export async function execOpenError(error: unknown, context: CommandContext): Promise<Error> {
  if (error instanceof UpgradeError && error.statusCode !== 403) {
    const why = await requireRunningPod(context).then(() => undefined, (e: unknown) => e)
    if (why instanceof UserError) return why
  }
  return explainExecOpen(error, context)
}

/** Pauses between attempts to open an exec the API server answered with a 5xx. */
const OPEN_RETRY_DELAYS_MS = [500, 1000, 2000]

/**
 * An exec the API server could not open (5xx: e.g. it cannot dial the kubelet for a
 * moment after a restart) is tried again: nothing ran and no input was read yet, so a
 * retry is safe. Anything else fails at once.
 */
export async function openWithRetry<T>(open: () => Promise<T>, delays = OPEN_RETRY_DELAYS_MS): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await open()
    } catch (error) {
      const transient = error instanceof UpgradeError && error.statusCode >= 500
      if (!transient || attempt >= delays.length) throw error
      await new Promise((resolve) => setTimeout(resolve, delays[attempt]))
    }
  }
}

/**
 * Run in the user container (or another of the pod's); resolves to the remote exit code,
 * throws when there is none.
 */
export async function runInPod(context: CommandContext, options: ExecOptions, container: PodContainer = USER_CONTAINER): Promise<number> {
  // Plain pipes in the user container (shell -- cmd, sh -c): through the local mux helper
  // when it is on (scripts/mux/), which answers undefined when it cannot take the command
  // and nothing has run yet.
  if (container === USER_CONTAINER && !options.tty && !options.onOpen) {
    const viaMux = await runThroughMux(context, options)
    if (viaMux !== undefined) return viaMux
  }
  const result = await openWithRetry(() => exec(containerTarget(context, container), options)).catch(async (error) => {
    throw await execOpenError(error, context)
  })
  return explainExecResult(context, result)
}

/**
 * The exit code of an exec that ran, or the error saying why it has none: lost on the way
 * (the pod went away, the connection broke), or failed (a bare 137, or a build's 1) because
 * its pod was being deleted or stopped.
 */
export async function explainExecResult(context: CommandContext, result: ExecResult): Promise<number> {
  if (result.message) throw await explainLostExec(context, result.message)
  // Any failure, not only a kill (> 128): a pod going away can end a command other ways
  // first (a build's nix client exits 1 when the daemon container dies before its own).
  // One read of the pod, and only when the command failed.
  if (result.exitCode !== 0) {
    const gone = await podGoneReason(context)
    if (gone) {
      const ended = result.exitCode > 128 ? 'was killed' : 'failed'
      throw new UserError(`the command ${ended} (status ${result.exitCode}) because pod ${context.names.pod} cannot run it: ${gone}`, {
        hint: `Run: trampoline setup --name ${context.names.instance}  (the store volume is kept), then try again.`,
        exitCode: ExitCode.notFound,
      })
    }
  }
  return result.exitCode
}

/** A short command with small output (and input), e.g. a probe. */
export async function captureInPod(
  context: CommandContext,
  command: string[],
  options: { container?: PodContainer; input?: string } = {},
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const target = containerTarget(context, options.container ?? USER_CONTAINER)
  const result = await openWithRetry(() => execCapture(target, command, options.input)).catch(async (error) => {
    throw await execOpenError(error, context)
  })
  if (result.message) throw await explainLostExec(context, result.message)
  return result
}
