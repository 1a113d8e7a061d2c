// The scripts ConfigMap: the in-pod scripts, nix.conf and sshd_config, mounted at
// /opt/trampoline. Pure: file contents in, object out.
import type { V1ConfigMap, V1OwnerReference, V1Pod } from '@kubernetes/client-node'
import type { InstanceNames } from '../instance.ts'

export interface ScriptsConfigMapInput {
  names: InstanceNames
  labels: Record<string, string>
  files: Record<string, string>
  /** The pod it belongs to: the ConfigMap is garbage-collected with it. */
  owner?: V1OwnerReference
}

export function buildScriptsConfigMap(input: ScriptsConfigMapInput): V1ConfigMap {
  const data: Record<string, string> = {}
  for (const name of Object.keys(input.files).sort()) data[name] = input.files[name]
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: input.names.scripts,
      labels: { ...input.labels },
      ...(input.owner ? { ownerReferences: [input.owner] } : {}),
    },
    data,
  }
}

/** An owner reference to a created pod (it has a uid once the API server made it). */
export function podOwnerReference(pod: V1Pod): V1OwnerReference {
  if (!pod.metadata?.name || !pod.metadata.uid) throw new Error('the pod has no name or uid yet')
  // No controller/blockOwnerDeletion: deleting the pod must never wait for its ConfigMap.
  return { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid }
}

/** Same files with the same contents (the live object may carry an empty data as undefined). */
export function sameData(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const left = a ?? {}
  const right = b ?? {}
  const keys = Object.keys(left)
  return keys.length === Object.keys(right).length && keys.every((k) => right[k] === left[k])
}
