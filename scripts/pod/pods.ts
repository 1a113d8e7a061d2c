// Finding the instance's pod and making sure it can take commands before we stream to it.
import type { V1Pod } from '@kubernetes/client-node'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError, isNotFound, networkErrorCode } from '../kube/client.ts'
import type { ExecTarget } from '../kube/exec.ts'
import { DAEMON_CONTAINER, USER_CONTAINER } from './contract.ts'
import { stoppedPod } from './stopped.ts'

export async function readPod(context: CommandContext): Promise<V1Pod | undefined> {
  const { cluster, names } = context
  try {
    return await cluster.core.readNamespacedPod({ name: names.pod, namespace: cluster.namespace })
  } catch (error) {
    if (isNotFound(error)) return undefined
    throw explainApiError(error, cluster, `read pod ${names.pod}`)
  }
}

/**
 * What the cluster said when it disrupted the pod (its DisruptionTarget condition): who
 * took it away and why, e.g. "evicted (Eviction API: evicting)".
 */
export function disruptionReason(pod: V1Pod): string | undefined {
  const condition = pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True')
  if (!condition) return undefined
  const what = DISRUPTIONS[condition.reason ?? ''] ?? `disrupted (${condition.reason ?? 'DisruptionTarget'})`
  return condition.message ? `${what}: ${condition.message.trim()}` : what
}

/** DisruptionTarget reasons (k8s.io/api/core/v1), in words. */
const DISRUPTIONS: Record<string, string> = {
  EvictionByEvictionAPI: 'evicted',
  PreemptionByScheduler: 'preempted by a higher-priority pod',
  DeletionByTaintManager: 'deleted because its node was tainted (not ready or unreachable)',
  DeletionByPodGC: 'deleted by the pod garbage collector (its node is gone)',
  TerminationByKubelet: 'stopped by the kubelet (node under resource pressure or shutting down)',
}

/** Why a pod that exists cannot take commands, or undefined when it can. */
export function notReadyReason(pod: V1Pod): string | undefined {
  const phase = pod.status?.phase
  const disrupted = disruptionReason(pod)
  if (pod.metadata?.deletionTimestamp) return `it is being deleted${disrupted ? ` (${disrupted})` : ''}`
  const stopped = stoppedPod(pod)
  if (stopped) return `it has stopped${stopped.message !== undefined ? ` (${stopped.message})` : ''}`
  if (phase === 'Failed') {
    const why = disrupted ?? [pod.status?.reason, pod.status?.message?.trim()].filter(Boolean).join(': ')
    return `it failed${why ? ` (${why})` : ''}`
  }
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

/** The container a command runs in: the user's, or nix-daemon's for what needs Nix's trust. */
export type PodContainer = typeof USER_CONTAINER | typeof DAEMON_CONTAINER

export function containerTarget(context: CommandContext, container: PodContainer): ExecTarget {
  return { kc: context.cluster.kc, namespace: context.cluster.namespace, pod: context.names.pod, container }
}

export function userTarget(context: CommandContext): ExecTarget {
  return containerTarget(context, USER_CONTAINER)
}

/**
 * The pod as a lost command finds it: gone (deleted, being deleted, stopped: the reason),
 * ready (so the connection was what failed), or unknown because the cluster itself does
 * not answer (the error saying so). A failed read is never taken for a deleted pod.
 */
export type PodAfterLoss =
  | { state: 'ready' }
  | { state: 'gone'; reason: string }
  | { state: 'unreachable'; error: Error }

export async function podAfterLoss(context: CommandContext): Promise<PodAfterLoss> {
  let pod: V1Pod | undefined
  try {
    pod = await readPod(context)
  } catch (error) {
    return { state: 'unreachable', error: error as Error }
  }
  if (!pod) return { state: 'gone', reason: 'it was deleted' }
  const reason = notReadyReason(pod)
  return reason ? { state: 'gone', reason } : { state: 'ready' }
}

/** Why the pod can no longer run commands (deleted, being deleted, stopped), if we know it cannot. */
export async function podGoneReason(context: CommandContext): Promise<string | undefined> {
  const now = await podAfterLoss(context)
  return now.state === 'gone' ? now.reason : undefined
}

/**
 * The error for an exec that ended without an exit code, from what the pod looks like
 * now: gone (exit 5, run setup), or there and ready, or unreadable because the cluster
 * stopped answering: then it was the connection to the cluster that was lost (exit 3).
 */
export function lostExecError(
  context: { names: Pick<CommandContext['names'], 'pod' | 'instance'>; cluster: Pick<CommandContext['cluster'], 'server'> },
  message: string,
  now: PodAfterLoss,
  what = 'the command',
): UserError {
  const { names, cluster } = context
  if (now.state === 'gone') {
    return new UserError(`lost ${what} in pod ${names.pod}: ${message}; the pod ${now.reason.replace(/^it /, '')}`, {
      hint: `Run: trampoline setup --name ${names.instance}  (the store volume is kept), then try again.`,
      exitCode: ExitCode.notFound,
    })
  }
  if (now.state === 'unreachable') {
    const code = networkErrorCode(now.error instanceof UserError ? now.error.cause : now.error)
    const why = code ? `it does not answer now (${code})` : `reading the pod failed: ${now.error.message}`
    return new UserError(`lost the connection to the cluster at ${cluster.server} during ${what} in pod ${names.pod} (${message}); ${why}`, {
      hint: 'The command may or may not have finished in the pod. Check the cluster is back (trampoline status), then try again.',
      exitCode: ExitCode.cluster,
      cause: now.error,
    })
  }
  return new UserError(`lost the connection to pod ${names.pod} through the cluster at ${cluster.server} during ${what} (${message}); the pod is still running`, {
    hint: 'The command may or may not have finished in the pod. Try again; if it keeps happening, check what sits between you and the cluster (a proxy or load balancer cutting long connections).',
    exitCode: ExitCode.cluster,
  })
}

/** Explain an exec that ended without an exit code (pod deleted or restarted, connection lost). */
export async function explainLostExec(context: CommandContext, message: string): Promise<UserError> {
  return lostExecError(context, message, await podAfterLoss(context))
}
