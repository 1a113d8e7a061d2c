// Why a pod ended Succeeded: one reader for setup (replace it), status (Stopped), the
// commands that need it running (it has stopped) and the wait's diagnosis. Succeeded means
// every container exited 0 and none restarts: the idle monitor's shutdown (its containers
// leave `idle: <reason>` as their termination message) or a clean exit of another kind.
import type { V1Pod } from '@kubernetes/client-node'
import { IDLE_PREFIX } from './contract.ts'

export interface StoppedPod {
  /** The first idle termination message (`idle: <reason>`, trimmed): the pod stopped itself. */
  idle?: string
  /** The first container's termination message, whatever it says (trimmed; may be empty). */
  message?: string
}

/** A pod that ended Succeeded, with what its containers said; undefined for any other pod. */
export function stoppedPod(pod: V1Pod): StoppedPod | undefined {
  if (pod.status?.phase !== 'Succeeded') return undefined
  const messages = (pod.status?.containerStatuses ?? [])
    .map((c) => c.state?.terminated?.message)
    .filter((m): m is string => !!m)
    .map((m) => m.trim())
  return { idle: messages.find((m) => m.startsWith(IDLE_PREFIX)), message: messages[0] }
}
