// Waiting for the instance's pod: Ready (reporting phases on the way, and stopping early
// with a diagnosis when waiting cannot help), or gone after a delete.
import { StorageV1Api, type CoreV1Event, type V1Pod, type V1StorageClass } from '@kubernetes/client-node'
import type { Cluster } from '../kube/client.ts'
import { explainApiError, isNotFound } from '../kube/client.ts'
import { followPod } from '../kube/watch.ts'
import { currentPhase, describeTimeout, diagnose, type Diagnosis, type PodSnapshot, type WaitPhase } from './diagnose.ts'
import { ExitCode, UserError } from '../errors.ts'

/** Events and the PVC are polled (the pod itself is watched): they change rarely. */
const POLL_MS = 3000
const LOG_LINES = 15

export interface ReadyWaitOptions {
  pod: string
  pvc: string
  timeoutSeconds: number
  onPhase?: (phase: WaitPhase, detail?: string) => void
}

export function waitForPodReady(cluster: Cluster, options: ReadyWaitOptions): Promise<V1Pod> {
  const snapshot: PodSnapshot = { events: [] }
  let lastPhase: string | undefined
  let seenPod = false
  let finished = false
  let classesAsked = false
  /** When each fatal diagnosis was first seen, for those that must last a while. */
  const firstSeen = new Map<string, number>()

  return new Promise<V1Pod>((resolve, reject) => {
    const finish = (outcome: { pod: V1Pod } | { error: unknown }) => {
      if (finished) return
      finished = true
      stop()
      clearInterval(poll)
      clearTimeout(deadline)
      if ('pod' in outcome) resolve(outcome.pod)
      else reject(outcome.error)
    }

    const fail = async (diagnosis: Diagnosis) => {
      if (finished) return
      finished = true // no second verdict while we fetch logs
      stop()
      clearInterval(poll)
      clearTimeout(deadline)
      reject(await diagnosisError(cluster, options.pod, diagnosis))
    }

    const evaluate = () => {
      if (finished) return
      const { phase, detail } = currentPhase(snapshot)
      const key = `${phase}\0${detail ?? ''}`
      if (key !== lastPhase) {
        lastPhase = key
        options.onPhase?.(phase, detail)
      }
      if (phase === 'ready' && snapshot.pod) return finish({ pod: snapshot.pod })
      if (seenPod && !snapshot.pod) {
        return void fail({ message: 'the pod was deleted while we waited for it', hint: 'Another command (down, clean, gc) removed it; run setup again.', fatal: true })
      }
      const diagnosis = diagnose(snapshot)
      if (!diagnosis?.fatal) return
      const since = firstSeen.get(diagnosis.message) ?? Date.now()
      firstSeen.set(diagnosis.message, since)
      if (Date.now() - since >= (diagnosis.settleSeconds ?? 0) * 1000) void fail(diagnosis)
    }

    const refresh = async () => {
      try {
        const [events, pvc] = await Promise.all([listEvents(cluster, [options.pod, options.pvc]), readPvc(cluster, options.pvc)])
        snapshot.events = events
        snapshot.pvc = pvc
        if (pvc?.status?.phase === 'Pending' && !classesAsked) {
          classesAsked = true
          snapshot.storageClasses = await listStorageClasses(cluster)
        }
        evaluate()
      } catch (error) {
        finish({ error: explainApiError(error, cluster, `read the state of pod ${options.pod}`) })
      }
    }

    const stop = followPod(cluster, options.pod, {
      onChange: (pod) => {
        if (pod) seenPod = true
        snapshot.pod = pod
        evaluate()
        // A status change often comes with new events (pulling, failed): look now.
        if (pod && !finished) void refresh()
      },
      onError: (error) => finish({ error: explainApiError(error, cluster, `watch pod ${options.pod}`) }),
    })
    const poll = setInterval(() => void refresh(), POLL_MS)
    const deadline = setTimeout(() => void fail(describeTimeout(snapshot, options.timeoutSeconds)), options.timeoutSeconds * 1000)
  })
}

/** Wait until no pod of that name (and uid, when given) exists; false on timeout. */
export function waitForPodGone(cluster: Cluster, name: string, timeoutSeconds: number, uid?: string): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    let done = false
    const finish = (gone: boolean | Error) => {
      if (done) return
      done = true
      stop()
      clearTimeout(deadline)
      if (gone instanceof Error) reject(gone)
      else resolve(gone)
    }
    const stop = followPod(cluster, name, {
      onChange: (pod) => {
        if (!pod || (uid && pod.metadata?.uid !== uid)) finish(true)
      },
      onError: (error) => finish(explainApiError(error, cluster, `watch pod ${name}`)),
    })
    const deadline = setTimeout(() => finish(false), timeoutSeconds * 1000)
  })
}

async function listEvents(cluster: Cluster, names: string[]): Promise<CoreV1Event[]> {
  const lists = await Promise.all(
    [...new Set(names)].map((name) => cluster.core.listNamespacedEvent({ namespace: cluster.namespace, fieldSelector: `involvedObject.name=${name}` })),
  )
  return lists.flatMap((list) => list.items)
}

async function readPvc(cluster: Cluster, name: string) {
  try {
    return await cluster.core.readNamespacedPersistentVolumeClaim({ name, namespace: cluster.namespace })
  } catch (error) {
    if (isNotFound(error)) return undefined
    throw error
  }
}

/** StorageClasses are cluster-scoped: many users may not list them. That is fine. */
async function listStorageClasses(cluster: Cluster): Promise<V1StorageClass[] | undefined> {
  try {
    return (await cluster.kc.makeApiClient(StorageV1Api).listStorageClass()).items
  } catch {
    return undefined
  }
}

/** The last log lines of a container, indented; empty when there are none to read. */
export async function tailLogs(cluster: Cluster, pod: string, container: string, previous: boolean): Promise<string> {
  const read = (prev: boolean) =>
    cluster.core.readNamespacedPodLog({ name: pod, namespace: cluster.namespace, container, tailLines: LOG_LINES, previous: prev })
  const text = await read(previous).catch(() => (previous ? read(false).catch(() => '') : ''))
  return formatLogTail(String(text ?? ''))
}

export function formatLogTail(text: string, lines = LOG_LINES): string {
  const kept = text.replace(/\s+$/, '').split('\n').filter((l, i, all) => l || i < all.length - 1).slice(-lines)
  return kept.length && kept.some(Boolean) ? kept.map((l) => `    | ${l}`).join('\n') : ''
}

async function diagnosisError(cluster: Cluster, pod: string, diagnosis: Diagnosis): Promise<UserError> {
  let message = diagnosis.message
  if (diagnosis.logsOf) {
    const logs = await tailLogs(cluster, pod, diagnosis.logsOf.container, diagnosis.logsOf.previous)
    if (logs) message += `\n  last log lines of ${diagnosis.logsOf.container}:\n${logs}`
  }
  return new UserError(`pod ${pod}: ${message}`, { hint: diagnosis.hint, exitCode: ExitCode.podFailed })
}
