// Finding the instance's pod and making sure it can take commands before we stream to it.
import type { V1Pod } from '@kubernetes/client-node'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError, isNotFound } from './client.ts'
import type { ExecTarget } from './exec.ts'

export const USER_CONTAINER = 'user'
export const DAEMON_CONTAINER = 'nix-daemon'

export async function readPod(context: CommandContext): Promise<V1Pod | undefined> {
  const { cluster, names } = context
  try {
    return await cluster.core.readNamespacedPod({ name: names.pod, namespace: cluster.namespace })
  } catch (error) {
    if (isNotFound(error)) return undefined
    throw explainApiError(error, cluster, `read pod ${names.pod}`)
  }
}

/** Why a pod that exists cannot take commands, or undefined when it can. */
export function notReadyReason(pod: V1Pod): string | undefined {
  const phase = pod.status?.phase
  if (pod.metadata?.deletionTimestamp) return 'it is being deleted'
  if (phase === 'Succeeded') {
    const message = pod.status?.containerStatuses?.find((c) => c.state?.terminated?.message)?.state?.terminated?.message
    return `it has stopped${message ? ` (${message.trim()})` : ''}`
  }
  if (phase === 'Failed') return `it failed${pod.status?.reason ? ` (${pod.status.reason})` : ''}`
  if (phase !== 'Running') return `it is ${phase ?? 'not started'}`
  const user = pod.status?.containerStatuses?.find((c) => c.name === USER_CONTAINER)
  if (!user?.ready) return 'its user container is not ready yet'
  return undefined
}

export async function requireRunningPod(context: CommandContext): Promise<V1Pod> {
  const pod = await readPod(context)
  const where = `in namespace "${context.cluster.namespace}" (context "${context.cluster.context}")`
  if (!pod) {
    throw new UserError(`instance "${context.names.instance}" has no pod ${where}`, {
      hint: `Run: trampoline setup${context.names.instance ? ` --name ${context.names.instance}` : ''}`,
      exitCode: ExitCode.notFound,
    })
  }
  const reason = notReadyReason(pod)
  if (reason) {
    throw new UserError(`pod ${context.names.pod} cannot take commands: ${reason}`, {
      hint: `Run: trampoline setup --name ${context.names.instance}  (it waits for the pod and says what blocks it)`,
      exitCode: ExitCode.notFound,
    })
  }
  return pod
}

export function userTarget(context: CommandContext): ExecTarget {
  return { kc: context.cluster.kc, namespace: context.cluster.namespace, pod: context.names.pod, container: USER_CONTAINER }
}

/** Why the pod can no longer run commands (deleted, being deleted, stopped), if it cannot. */
export async function podGoneReason(context: CommandContext): Promise<string | undefined> {
  const pod = await readPod(context).catch(() => undefined)
  return pod ? notReadyReason(pod) : 'it was deleted'
}

/**
 * Explain an exec that ended without an exit code: usually the pod was deleted or
 * restarted under the command.
 */
export async function explainLostExec(context: CommandContext, message: string): Promise<UserError> {
  const now = await podGoneReason(context)
  return new UserError(`lost the command in pod ${context.names.pod}: ${message}${now ? `; the pod ${now.replace(/^it /, '')}` : ''}`, {
    hint: now ? `Run: trampoline setup --name ${context.names.instance}, then try again.` : 'Try again; if it keeps happening, check the cluster (trampoline status).',
    exitCode: ExitCode.notFound,
  })
}
