// The instance's Pod and PVC, built from the template (container/k8s-pod.yaml) by filling
// in names, labels and the user's settings. Pure: the template and settings come in, new
// objects go out (the template is never modified). settingsFromPod reads them back, so a
// later `setup` without options keeps what the running pod was made with.
import { createHash } from 'node:crypto'
import type { V1Container, V1EnvVar, V1PersistentVolumeClaim, V1Pod, V1ResourceRequirements } from '@kubernetes/client-node'
import type { InstanceNames } from '../instance.ts'
import type { InstanceTemplate } from './template.ts'
import {
  DAEMON_CONTAINER,
  FARM_KEY_DIR,
  FARM_MACHINES_ENV,
  FARM_MACHINES_FILE,
  FARM_RUN_DIR,
  IDLE_TIMEOUT_ENV,
  SUBSTITUTERS_ENV,
  TRUSTED_KEYS_ENV,
  USER_CONTAINER,
} from '../pod/contract.ts'

export const ARCH_LABEL = 'kubernetes.io/arch'
/** Volume names in k8s-pod.yaml for the instance's two Secrets. */
export const SSH_VOLUME = 'ssh'
export const AGENT_VOLUME = 'agent'
export const SIGNING_VOLUME = 'signing'
export const NETRC_VOLUME = 'netrc'
/**
 * Build farm (manifests/worker.ts): the farm Secret's client key, mounted into nix-daemon
 * only (0400, optional: an instance without workers has no farm Secret) at FARM_KEY_DIR,
 * and a daemon-only emptyDir at FARM_RUN_DIR (pod/contract.ts says why it is never in
 * the shared run directory).
 */
export const FARM_SECRET_VOLUME = 'farm'
export const FARM_RUN_VOLUME = 'farm-run'
export const FARM_CLIENT_KEY = 'client_ed25519'

export function farmSecretName(names: Pick<InstanceNames, 'pod'>): string {
  return `${names.pod}-farm`
}

export const PULL_POLICIES = ['IfNotPresent', 'Never', 'Always'] as const
export type PullPolicy = (typeof PULL_POLICIES)[number]

/** A resource with its request and an optional limit ("2" / "2:4" / "2:" on the command line). */
export interface ResourceSetting {
  request: string
  limit?: string
}

/** Binary caches the pod's nix-daemon substitutes from, and the keys it accepts their paths with. */
export interface CacheSettings {
  substituters: string[]
  trustedPublicKeys: string[]
}

/** Everything a user may choose about the pod. The builds run in nix-daemon: cpu and memory size that container. */
export interface PodSettings {
  image: string
  pullPolicy: PullPolicy
  cpu: ResourceSetting
  memory: ResourceSetting
  /** kubernetes.io/arch of the node; undefined lets the scheduler pick any. */
  arch?: string
  /** Seconds without activity before the pod stops itself; 0 = never. */
  idleTimeoutSeconds: number
  /** undefined: the template's (cache.nixos.org); a pod from before caches has none. */
  caches?: CacheSettings
  /** Names of docker-registry Secrets for pulling the image from a private registry. */
  imagePullSecrets?: string[]
}

export interface StoreSettings {
  size: string
  /** undefined: the cluster's default StorageClass. */
  storageClass?: string
}

function clone<T>(value: T): T {
  return structuredClone(value)
}

function allContainers(pod: V1Pod): V1Container[] {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
}

function container(pod: V1Pod, name: string): V1Container {
  const found = pod.spec?.containers.find((c) => c.name === name)
  if (!found) throw new Error(`the pod template has no container "${name}"`)
  return found
}

function setResource(resources: V1ResourceRequirements, name: 'cpu' | 'memory', setting: ResourceSetting): V1ResourceRequirements {
  const limits = { ...resources.limits }
  if (setting.limit === undefined) delete limits[name]
  else limits[name] = setting.limit
  const result: V1ResourceRequirements = { ...resources, requests: { ...resources.requests, [name]: setting.request } }
  if (Object.keys(limits).length) result.limits = limits
  else delete result.limits
  return result
}

function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}

function setEnv(env: V1EnvVar[] | undefined, name: string, value: string): V1EnvVar[] {
  const list = env ?? []
  return list.some((e) => e.name === name) ? list.map((e) => (e.name === name ? { name, value } : e)) : [...list, { name, value }]
}

/** The settings the template itself stands for (what `kubectl apply -k container/` runs). */
export function templateSettings(template: InstanceTemplate): PodSettings {
  return settingsFromPod(template.pod)
}

export function templateStore(template: InstanceTemplate): StoreSettings {
  return storeFromPvc(template.pvc)
}

/** Read the settings back from a pod built by buildPod (or by kubectl from the template). */
/** Whether a pod has the build farm's mounts (buildPod with farm). */
export function hasFarmMounts(pod: V1Pod): boolean {
  return !!pod.spec?.containers.find((c) => c.name === DAEMON_CONTAINER)?.env?.some((e) => e.name === FARM_MACHINES_ENV)
}

export function settingsFromPod(pod: V1Pod): PodSettings {
  const daemon = container(pod, DAEMON_CONTAINER)
  const user = container(pod, USER_CONTAINER)
  const resource = (name: 'cpu' | 'memory'): ResourceSetting =>
    withoutUndefined({ request: String(daemon.resources?.requests?.[name] ?? '0'), limit: daemon.resources?.limits?.[name] as string | undefined })
  const idle = Number(user.env?.find((e) => e.name === IDLE_TIMEOUT_ENV)?.value ?? '0')
  const envOf = (name: string) => daemon.env?.find((e) => e.name === name)?.value
  const words = (text: string | undefined) => (text ?? '').split(/\s+/).filter(Boolean)
  const substituters = envOf(SUBSTITUTERS_ENV)
  const keys = envOf(TRUSTED_KEYS_ENV)
  const pullSecrets = (pod.spec?.imagePullSecrets ?? []).map((s) => s.name ?? '').filter(Boolean)
  return withoutUndefined({
    image: daemon.image ?? '',
    pullPolicy: (daemon.imagePullPolicy ?? 'IfNotPresent') as PullPolicy,
    cpu: resource('cpu'),
    memory: resource('memory'),
    arch: pod.spec?.nodeSelector?.[ARCH_LABEL],
    idleTimeoutSeconds: Number.isFinite(idle) ? idle : 0,
    caches: substituters === undefined && keys === undefined ? undefined : { substituters: words(substituters), trustedPublicKeys: words(keys) },
    imagePullSecrets: pullSecrets.length ? pullSecrets : undefined,
  })
}

export function storeFromPvc(pvc: V1PersistentVolumeClaim): StoreSettings {
  return withoutUndefined({
    size: String(pvc.spec?.resources?.requests?.storage ?? ''),
    storageClass: pvc.spec?.storageClassName,
  })
}

export interface PodInput {
  names: InstanceNames
  labels: Record<string, string>
  settings: PodSettings
  /** The instance has a build farm (its farm Secret records one, even of 0 workers): mount its side in nix-daemon. */
  farm?: boolean
}

export function buildPod(template: InstanceTemplate, input: PodInput): V1Pod {
  const { names, labels, settings } = input
  const pod = clone(template.pod)
  pod.metadata = { ...pod.metadata, name: names.pod, labels: { ...labels } }
  const spec = pod.spec!
  for (const c of allContainers(pod)) {
    c.image = settings.image
    c.imagePullPolicy = settings.pullPolicy
  }
  const daemon = container(pod, DAEMON_CONTAINER)
  daemon.resources = setResource(setResource(daemon.resources ?? {}, 'cpu', settings.cpu), 'memory', settings.memory)
  if (settings.caches) {
    daemon.env = setEnv(daemon.env, SUBSTITUTERS_ENV, settings.caches.substituters.join(' '))
    daemon.env = setEnv(daemon.env, TRUSTED_KEYS_ENV, settings.caches.trustedPublicKeys.join(' '))
  }
  const user = container(pod, USER_CONTAINER)
  user.env = setEnv(user.env, IDLE_TIMEOUT_ENV, String(settings.idleTimeoutSeconds))
  if (settings.imagePullSecrets?.length) spec.imagePullSecrets = settings.imagePullSecrets.map((name) => ({ name }))
  else delete spec.imagePullSecrets

  const nodeSelector = { ...spec.nodeSelector }
  if (settings.arch) nodeSelector[ARCH_LABEL] = settings.arch
  else delete nodeSelector[ARCH_LABEL]
  if (Object.keys(nodeSelector).length) spec.nodeSelector = nodeSelector
  else delete spec.nodeSelector

  for (const volume of spec.volumes ?? []) {
    if (volume.persistentVolumeClaim) volume.persistentVolumeClaim.claimName = names.pvc
    if (volume.configMap) volume.configMap.name = names.scripts
    if (volume.secret) volume.secret.secretName = secretNameFor(volume.name, names)
  }
  if (input.farm) withFarmMounts(pod, names)
  return pod
}

/**
 * The main daemon's side of the build farm (see FARM_SECRET_VOLUME). Added once an
 * instance has a farm and kept while its Secret records one (also at 0 workers), so
 * scaling never replaces the pod; only the first `--workers` does.
 */
function withFarmMounts(pod: V1Pod, names: InstanceNames): void {
  const spec = pod.spec!
  const volumes = (spec.volumes ?? []).filter((v) => v.name !== FARM_SECRET_VOLUME && v.name !== FARM_RUN_VOLUME)
  volumes.push(
    { name: FARM_SECRET_VOLUME, secret: { secretName: farmSecretName(names), optional: true, defaultMode: 0o400, items: [{ key: FARM_CLIENT_KEY, path: FARM_CLIENT_KEY }] } },
    { name: FARM_RUN_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
  )
  spec.volumes = volumes
  const daemon = container(pod, DAEMON_CONTAINER)
  daemon.env = setEnv(daemon.env, FARM_MACHINES_ENV, FARM_MACHINES_FILE)
  const mounts = (daemon.volumeMounts ?? []).filter((m) => m.name !== FARM_SECRET_VOLUME && m.name !== FARM_RUN_VOLUME)
  mounts.push({ name: FARM_SECRET_VOLUME, mountPath: FARM_KEY_DIR, readOnly: true }, { name: FARM_RUN_VOLUME, mountPath: FARM_RUN_DIR })
  daemon.volumeMounts = mounts
}

/** Which of the instance's Secrets a template volume mounts, by the volume's name. */
function secretNameFor(volume: string, names: InstanceNames): string {
  if (volume === SSH_VOLUME) return names.sshSecret
  if (volume === AGENT_VOLUME) return names.agentSecret
  if (volume === SIGNING_VOLUME) return names.signingSecret
  if (volume === NETRC_VOLUME) return names.netrcSecret
  throw new Error(`the pod template mounts an unknown Secret volume "${volume}"`)
}

export interface PvcInput {
  names: InstanceNames
  labels: Record<string, string>
  store: StoreSettings
}

export function buildPvc(template: InstanceTemplate, input: PvcInput): V1PersistentVolumeClaim {
  const pvc = clone(template.pvc)
  pvc.metadata = { ...pvc.metadata, name: input.names.pvc, labels: { ...input.labels } }
  const spec = pvc.spec!
  spec.resources = { ...spec.resources, requests: { ...spec.resources?.requests, storage: input.store.size } }
  if (input.store.storageClass) spec.storageClassName = input.store.storageClass
  else delete spec.storageClassName
  return pvc
}

/** Marks the pod with a digest of its spec, so setup can tell whether a live pod matches. */
export const SPEC_HASH_ANNOTATION = 'trampoline.dev/spec-hash'

/** JSON with sorted keys: the same spec always gives the same text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

export function specHash(pod: V1Pod): string {
  return createHash('sha256').update(canonicalJson(pod.spec)).digest('hex').slice(0, 16)
}

/** The pod as setup creates it: annotated with its spec digest (the API server fills in defaults, so we cannot compare specs directly). */
export function withSpecHash(pod: V1Pod): V1Pod {
  return { ...pod, metadata: { ...pod.metadata, annotations: { ...pod.metadata?.annotations, [SPEC_HASH_ANNOTATION]: specHash(pod) } } }
}
