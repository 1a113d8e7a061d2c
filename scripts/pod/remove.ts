// Taking an instance down: `down` stops it (pod and workers; the store and keys stay),
// `clean` removes every labelled object of it. Each deleted pod is waited for until gone,
// so the next setup never meets a terminating one.
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { instanceSelector } from '../instance.ts'
import { info } from '../log.ts'
import { deleteWorkers, listWorkers } from '../farm/farm.ts'
import { deleteNow, describeObject, listAllLabelled, summarise, type LabelledObject } from './objects.ts'
import { readPod } from './pods.ts'
import { waitForPodGone } from './wait.ts'

function stillTerminating(pod: string, timeoutSeconds: number, hint: string): UserError {
  return new UserError(`pod ${pod} is still terminating after ${timeoutSeconds}s`, { hint, exitCode: ExitCode.failure })
}

export interface StopResult {
  /** The pod was there and is deleted now. */
  deleted: boolean
  workersDeleted: string[]
  /** False when the instance had no pod. */
  hadPod: boolean
}

/** Delete the instance's workers, then its pod, and wait until all are gone. */
export async function stopInstance(context: CommandContext, timeoutSeconds: number): Promise<StopResult> {
  const { cluster, names } = context
  // Workers first (they would go with the pod, through its ownerReference, but only as
  // fast as the garbage collector; down waits until they are gone).
  const workers = await listWorkers(context)
  if (workers.length) info(`deleting ${workers.length} worker pod${workers.length === 1 ? '' : 's'}`)
  const workersDeleted = await deleteWorkers(context, workers, timeoutSeconds)
  const pod = await readPod(context)
  if (!pod) return { deleted: false, workersDeleted, hadPod: false }
  const object = summarise('Pod', pod.metadata, cluster.namespace, pod.status?.phase)
  info(`deleting pod ${names.pod}${object.phase === 'Running' ? '' : ` (${object.phase ?? 'not started'}: at once)`}`)
  const deleted = await deleteNow(cluster, object)
  if (deleted && !(await waitForPodGone(cluster, names.pod, timeoutSeconds, object.uid))) {
    throw stillTerminating(names.pod, timeoutSeconds, 'It will go away by itself; a node that is down can hold it for a while. Check with: trampoline status')
  }
  return { deleted, workersDeleted, hadPod: true }
}

/** What clean removes, pod first (so nothing restarts on a missing ConfigMap meanwhile). */
export function cleanPlan(objects: LabelledObject[], keepStore: boolean): LabelledObject[] {
  const order = ['Pod', 'NetworkPolicy', 'ConfigMap', 'Secret', 'PersistentVolumeClaim']
  return objects
    .filter((o) => !(keepStore && o.kind === 'PersistentVolumeClaim'))
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.name.localeCompare(b.name))
}

/** Delete every labelled object of the instance (its PVC too unless keepStore); returns what went. */
export async function removeInstance(context: CommandContext, keepStore: boolean, timeoutSeconds: number): Promise<string[]> {
  const { cluster, names } = context
  const plan = cleanPlan(await listAllLabelled(cluster, instanceSelector(names.instance)), keepStore)
  const deleted: string[] = []
  const pods: LabelledObject[] = []
  for (const object of plan) {
    if (await deleteNow(cluster, object)) {
      deleted.push(describeObject(object))
      if (object.kind === 'Pod') pods.push(object)
      info(`deleted ${describeObject(object)}`)
    }
  }
  for (const pod of pods) {
    if (!(await waitForPodGone(cluster, pod.name, timeoutSeconds, pod.uid))) {
      throw stillTerminating(pod.name, timeoutSeconds, 'It will go away by itself; check with: trampoline status')
    }
  }
  return deleted
}
