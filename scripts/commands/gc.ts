// `trampoline gc`: sweep what crashed clients and ended agent sessions leave behind in the
// namespace: pods past their `trampoline.dev/expires-at`, and labelled objects whose
// instance has no pod. Stores (PVC, SSH and agent Secrets) stay unless --include-stores.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { APP_SELECTOR, namesFor, SESSION_EXPIRES_ANNOTATION } from '../instance.ts'
import { deleteObject, describeObject, gracePeriodFor, listAllLabelled, type LabelledObject } from '../pod/objects.ts'
import { farmSecretName } from '../manifests/pod.ts'

interface GcArgs extends GlobalOptions {
  dryRun?: boolean
  includeStores?: boolean
}

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

export const command: CommandModule<GlobalOptions, GcArgs> = {
  command: 'gc',
  describe: 'Remove expired session pods and objects left without a pod (stores kept unless --include-stores)',
  builder: (yargs) =>
    yargs
      .option('dry-run', { type: 'boolean', describe: 'Only list what would be removed' })
      .option('include-stores', { type: 'boolean', describe: 'Also remove the PVCs and SSH/agent Secrets of instances without a pod' }),
  handler: async (args) => {
    const context = commandContext({ ...args, name: args.name ?? 'default' })
    const { cluster } = context
    const plan = gcPlan(await listAllLabelled(cluster, APP_SELECTOR), Date.now(), { includeStores: args.includeStores ?? false })
    const removed: { object: string; why: string }[] = []
    for (const { object, why } of plan) {
      if (args.dryRun || (await deleteObject(cluster, object, { gracePeriodSeconds: gracePeriodFor(object) }))) {
        removed.push({ object: describeObject(object), why })
      }
    }
    printResult(context, { namespace: cluster.namespace, dryRun: args.dryRun ?? false, removed }, () =>
      removed.length
        ? removed.map((r) => `${args.dryRun ? 'would remove' : 'removed'} ${r.object} (${r.why})`).join('\n')
        : `nothing to collect in namespace "${cluster.namespace}"`,
    )
  },
}
