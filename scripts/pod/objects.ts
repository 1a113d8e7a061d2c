// Every kind of object trampoline labels, behind one list/delete interface, so that
// status, clean and gc treat pods, ConfigMaps, Secrets, PVCs and NetworkPolicies alike.
import type { V1ObjectMeta, V1Secret } from '@kubernetes/client-node'
import type { Cluster } from '../kube/client.ts'
import { explainApiError, isNotFound } from '../kube/client.ts'
import { INSTANCE_LABEL, OWNER_LABEL } from '../instance.ts'

export const KINDS = ['Pod', 'ConfigMap', 'Secret', 'PersistentVolumeClaim', 'NetworkPolicy'] as const
export type Kind = (typeof KINDS)[number]

export interface LabelledObject {
  kind: Kind
  name: string
  namespace: string
  uid?: string
  instance?: string
  owner?: string
  created?: Date
  annotations: Record<string, string>
  /** Pods only: status.phase. */
  phase?: string
}

/** A Secret of the instance, or undefined when it does not exist (yet); other failures explained. */
export async function readOptionalSecret(cluster: Cluster, name: string): Promise<V1Secret | undefined> {
  try {
    return await cluster.core.readNamespacedSecret({ name, namespace: cluster.namespace })
  } catch (error) {
    if (isNotFound(error)) return undefined
    throw explainApiError(error, cluster, `read secret ${name}`)
  }
}

export function summarise(kind: Kind, metadata: V1ObjectMeta | undefined, namespace: string, phase?: string): LabelledObject {
  return {
    kind,
    name: metadata?.name ?? '',
    namespace: metadata?.namespace ?? namespace,
    uid: metadata?.uid,
    instance: metadata?.labels?.[INSTANCE_LABEL],
    owner: metadata?.labels?.[OWNER_LABEL],
    created: metadata?.creationTimestamp ? new Date(metadata.creationTimestamp) : undefined,
    annotations: metadata?.annotations ?? {},
    phase,
  }
}

/** List one kind by label selector in the cluster's namespace. */
export async function listLabelled(cluster: Cluster, kind: Kind, labelSelector: string): Promise<LabelledObject[]> {
  const namespace = cluster.namespace
  const query = { namespace, labelSelector }
  try {
    switch (kind) {
      case 'Pod':
        return (await cluster.core.listNamespacedPod(query)).items.map((o) => summarise(kind, o.metadata, namespace, o.status?.phase))
      case 'ConfigMap':
        return (await cluster.core.listNamespacedConfigMap(query)).items.map((o) => summarise(kind, o.metadata, namespace))
      case 'Secret':
        return (await cluster.core.listNamespacedSecret(query)).items.map((o) => summarise(kind, o.metadata, namespace))
      case 'PersistentVolumeClaim':
        return (await cluster.core.listNamespacedPersistentVolumeClaim(query)).items.map((o) => summarise(kind, o.metadata, namespace))
      case 'NetworkPolicy':
        return (await cluster.networking.listNamespacedNetworkPolicy(query)).items.map((o) => summarise(kind, o.metadata, namespace))
    }
  } catch (error) {
    throw explainApiError(error, cluster, `list ${kind}s`)
  }
}

export async function listAllLabelled(cluster: Cluster, labelSelector: string, kinds: readonly Kind[] = KINDS): Promise<LabelledObject[]> {
  return (await Promise.all(kinds.map((kind) => listLabelled(cluster, kind, labelSelector)))).flat()
}

export interface DeleteOptions {
  /** 0 deletes at once (pods that are not running have nothing to shut down). */
  gracePeriodSeconds?: number
}

/**
 * Delete one object; false when it was already gone. The uid precondition makes sure we
 * delete what we listed, not a namesake created since.
 */
export async function deleteObject(cluster: Cluster, object: LabelledObject, options: DeleteOptions = {}): Promise<boolean> {
  const request = {
    name: object.name,
    namespace: object.namespace,
    gracePeriodSeconds: options.gracePeriodSeconds,
    propagationPolicy: 'Background',
    body: { preconditions: object.uid ? { uid: object.uid } : undefined, gracePeriodSeconds: options.gracePeriodSeconds },
  }
  try {
    switch (object.kind) {
      case 'Pod':
        await cluster.core.deleteNamespacedPod(request)
        break
      case 'ConfigMap':
        await cluster.core.deleteNamespacedConfigMap(request)
        break
      case 'Secret':
        await cluster.core.deleteNamespacedSecret(request)
        break
      case 'PersistentVolumeClaim':
        await cluster.core.deleteNamespacedPersistentVolumeClaim(request)
        break
      case 'NetworkPolicy':
        await cluster.networking.deleteNamespacedNetworkPolicy(request)
        break
    }
    return true
  } catch (error) {
    // 409 on a uid precondition: it is already a different object; not ours to delete.
    if (isNotFound(error) || (error as { code?: number }).code === 409) return false
    throw explainApiError(error, cluster, `delete ${object.kind} ${object.name}`)
  }
}

/** Delete with the grace its kind and phase call for (gracePeriodFor); false when already gone. */
export function deleteNow(cluster: Cluster, object: LabelledObject): Promise<boolean> {
  return deleteObject(cluster, object, { gracePeriodSeconds: gracePeriodFor(object) })
}

/** Pods that never ran have nothing to shut down: delete those at once. */
export function gracePeriodFor(object: LabelledObject): number | undefined {
  return object.kind === 'Pod' && object.phase !== 'Running' ? 0 : undefined
}

export function describeObject(object: Pick<LabelledObject, 'kind' | 'name'>): string {
  const short: Record<Kind, string> = { Pod: 'pod', ConfigMap: 'configmap', Secret: 'secret', PersistentVolumeClaim: 'pvc', NetworkPolicy: 'networkpolicy' }
  return `${short[object.kind]}/${object.name}`
}
