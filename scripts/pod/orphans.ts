// Orphans in a namespace: pods past their `trampoline.dev/expires-at`, and labelled objects
// whose instance has no pod (what crashed clients and ended agent sessions leave behind).
import type { Cluster } from '../kube/client.ts'
import { APP_SELECTOR, namesFor, SESSION_EXPIRES_ANNOTATION } from '../instance.ts'
import { farmSecretName } from '../manifests/pod.ts'
import { deleteNow, describeObject, listAllLabelled, type LabelledObject } from './objects.ts'

/** Objects younger than this may belong to a setup that has not created its pod yet. */
export const ORPHAN_GRACE_SECONDS = 300

export interface GcItem {
  object: LabelledObject
  why: string
}

/** A pod's expiry time from its annotation; undefined when it has none or it is unreadable. */
export function expiresAt(object: LabelledObject): number | undefined {
  const raw = object.annotations[SESSION_EXPIRES_ANNOTATION]
  if (!raw) return undefined
  const ms = Date.parse(raw)
  return Number.isNaN(ms) ? undefined : ms
}

/** The instance's identity and data (store, SSH keys, agent key): survive gc unless asked. */
function isStore(object: LabelledObject): boolean {
  if (object.kind === 'PersistentVolumeClaim') return true
  if (object.kind !== 'Secret' || !object.instance) return false
  const names = namesFor(object.instance)
  return (
    object.name === names.sshSecret ||
    object.name === names.agentSecret ||
    object.name === names.signingSecret ||
    object.name === names.netrcSecret ||
    object.name === farmSecretName(names)
  )
}

/** A build-farm worker pod (`trampoline-<instance>-worker-...`): it keeps no instance alive. */
export function isWorkerPod(object: LabelledObject): boolean {
  return object.kind === 'Pod' && !!object.instance && object.name.startsWith(`${namesFor(object.instance).pod}-worker-`)
}

export function gcPlan(objects: LabelledObject[], now: number, options: { includeStores: boolean; graceSeconds?: number }): GcItem[] {
  const grace = (options.graceSeconds ?? ORPHAN_GRACE_SECONDS) * 1000
  const plan: GcItem[] = []
  const livePods = new Set<string>()
  for (const pod of objects.filter((o) => o.kind === 'Pod' && !isWorkerPod(o))) {
    const expiry = expiresAt(pod)
    if (expiry !== undefined && expiry <= now) plan.push({ object: pod, why: `expired at ${new Date(expiry).toISOString()}` })
    else if (pod.instance) livePods.add(`${pod.namespace}/${pod.instance}`)
  }
  for (const object of objects) {
    if ((object.kind === 'Pod' && !isWorkerPod(object)) || !object.instance) continue
    if (livePods.has(`${object.namespace}/${object.instance}`)) continue
    if (isStore(object) && !options.includeStores) continue
    const age = object.created ? now - object.created.getTime() : Number.POSITIVE_INFINITY
    if (age < grace) continue
    plan.push({ object, why: `instance "${object.instance}" has no pod` })
  }
  return plan
}

/** Remove (or with dryRun only list) the namespace's orphans; returns what went, and why. */
export async function collectOrphans(cluster: Cluster, options: { dryRun: boolean; includeStores: boolean }): Promise<{ object: string; why: string }[]> {
  const plan = gcPlan(await listAllLabelled(cluster, APP_SELECTOR), Date.now(), { includeStores: options.includeStores })
  const removed: { object: string; why: string }[] = []
  for (const { object, why } of plan) {
    if (options.dryRun || (await deleteNow(cluster, object))) removed.push({ object: describeObject(object), why })
  }
  return removed
}
