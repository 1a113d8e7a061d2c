// The build farm's objects (`setup --workers N`): worker pods, the farm Secret, and the
// main daemon's machines file and ssh config that make the workers its remote builders.
// Pure: settings and keys in, objects and file contents out.
//
// A worker is a nix-daemon (privileged only for the sandbox, like the main one) and a
// non-root sshd that lets in only the main daemon's client key, forced to
// `nix-daemon --stdio` (container/entrypoint-daemon.sh, worker-*). Its store is an emptyDir: a
// worker is a cache (results are copied to the main store), emptyDirs need no volume
// attach (RWO attach limits, zone pinning) and go with the pod, so scaling is cheap.
import type { V1OwnerReference, V1Pod, V1Secret } from '@kubernetes/client-node'
import { COMPONENT_LABEL, type InstanceNames } from '../instance.ts'
import { ARCH_LABEL, farmSecretName, type PodSettings, type ResourceSetting } from './pod.ts'
import {
  DAEMON_CONTAINER,
  ENTRYPOINT_DAEMON,
  FARM_KEY_DIR,
  FARM_MACHINES_ENV,
  FARM_MACHINES_FILE,
  FARM_RUN_DIR,
  IDLE_TIMEOUT_ENV,
  INIT_CONTAINER,
  POD_SIGNING_KEY_FILE,
  RUN_DIR,
  SCRIPTS_DIR,
  SIGNING_KEY_ENV,
  SUBSTITUTERS_ENV,
  TRUSTED_KEYS_ENV,
} from '../pod/contract.ts'

export const WORKER_COMPONENT = 'worker'
export const FARM_COMPONENT = 'farm'
export const SSHD_CONTAINER = 'sshd'
export const WORKER_SSH_PORT = 2222
/** The user the main daemon's ssh-ng logs in as (UID 1000, trusted by the worker's Nix only). */
export const WORKER_USER = 'trampoline'
/** Worker pods carry their farm index and arch, for listing and status. */
export const WORKER_INDEX_LABEL = 'trampoline.dev/worker-index'
/** The farm settings `setup` last applied, so a later setup without --workers keeps them. */
export const FARM_SETTINGS_ANNOTATION = 'trampoline.dev/farm'

export const FARM_CLIENT_KEY_FILE = `${FARM_KEY_DIR}/client_ed25519`
export const FARM_SSH_CONFIG_FILE = `${FARM_RUN_DIR}/ssh_config`
export { farmSecretName }

export const FARM_SECRET_KEYS = {
  clientPrivateKey: 'client_ed25519',
  clientPublicKey: 'client_ed25519.pub',
  hostPrivateKey: 'ssh_host_ed25519_key',
  hostPublicKey: 'ssh_host_ed25519_key.pub',
  authorizedKeys: 'authorized_keys',
} as const

/** The command every session of the client key runs, whatever it asks for. */
export const WORKER_FORCED_COMMAND = 'nix-daemon --stdio'

export interface FarmSettings {
  /** Workers per architecture (or in all, when no arch is chosen). */
  workers: number
  cpu: ResourceSetting
  memory: ResourceSetting
  /** kubernetes.io/arch values; empty: any node. */
  arches: string[]
}

export const DEFAULT_FARM: Omit<FarmSettings, 'workers'> = {
  cpu: { request: '1' },
  memory: { request: '1Gi', limit: '8Gi' },
  arches: [],
}

export interface WorkerSlot {
  name: string
  index: number
  arch?: string
}

/** The workers a farm consists of: N per arch, named by arch when one is chosen. */
export function workerSlots(names: InstanceNames, farm: Pick<FarmSettings, 'workers' | 'arches'>): WorkerSlot[] {
  const slots: WorkerSlot[] = []
  const arches = farm.arches.length ? farm.arches : [undefined]
  for (const arch of arches) {
    for (let index = 0; index < farm.workers; index++) {
      slots.push({ name: `${names.pod}-worker-${arch ? `${arch}-` : ''}${index}`, index, arch })
    }
  }
  return slots
}

/** Cores of a CPU quantity ("100m", "2", "1.5"); NaN when unreadable. */
export function cpuCores(quantity: string): number {
  const match = /^(\d+(?:\.\d+)?)(m?)$/.exec(quantity.trim())
  if (!match) return Number.NaN
  return Number(match[1]) / (match[2] ? 1000 : 1)
}

/** Builds at once on a worker: its requested cores, at least one. */
export function maxJobsFor(cpu: ResourceSetting): number {
  const cores = cpuCores(cpu.request)
  return Number.isFinite(cores) ? Math.max(1, Math.ceil(cores)) : 1
}

/**
 * Nix ranks free machines by running jobs / speed factor: equal workers tie, and of
 * workers of different sizes the one with more cores is preferred.
 */
export function speedFactorFor(cpu: ResourceSetting): number {
  const cores = cpuCores(cpu.request)
  return Number.isFinite(cores) ? Math.max(1, Math.round(cores)) : 1
}

export interface WorkerPodInput {
  names: InstanceNames
  labels: Record<string, string>
  /** The main pod's settings: image, pull policy and secrets, caches, idle timeout. */
  pod: PodSettings
  farm: FarmSettings
  slot: WorkerSlot
  /** The main pod: deleting it deletes its workers. */
  owner: V1OwnerReference
}

export function workerLabels(labels: Record<string, string>, slot?: WorkerSlot): Record<string, string> {
  return { ...labels, [COMPONENT_LABEL]: WORKER_COMPONENT, ...(slot ? { [WORKER_INDEX_LABEL]: String(slot.index) } : {}) }
}

function resources(cpu: ResourceSetting, memory: ResourceSetting) {
  const limits: Record<string, string> = {}
  if (cpu.limit) limits.cpu = cpu.limit
  if (memory.limit) limits.memory = memory.limit
  return { requests: { cpu: cpu.request, memory: memory.request }, ...(Object.keys(limits).length ? { limits } : {}) }
}

export function buildWorkerPod(input: WorkerPodInput): V1Pod {
  const { names, pod: settings, farm, slot } = input
  const image = settings.image
  const imagePullPolicy = settings.pullPolicy
  const script = ENTRYPOINT_DAEMON
  const env = [
    { name: 'NIX_CONF_DIR', value: SCRIPTS_DIR },
    { name: IDLE_TIMEOUT_ENV, value: String(settings.idleTimeoutSeconds) },
  ]
  const cacheEnv = settings.caches
    ? [
        { name: SUBSTITUTERS_ENV, value: settings.caches.substituters.join(' ') },
        { name: TRUSTED_KEYS_ENV, value: settings.caches.trustedPublicKeys.join(' ') },
      ]
    : []
  const scripts = { name: 'scripts', mountPath: SCRIPTS_DIR, readOnly: true }
  const run = { name: 'run', mountPath: RUN_DIR }
  const nodeSelector = slot.arch ? { [ARCH_LABEL]: slot.arch } : undefined
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: slot.name, labels: workerLabels(input.labels, slot), ownerReferences: [input.owner] },
    spec: {
      // Like the main pod: a crash restarts in place, an idle stop ends the pod Succeeded.
      restartPolicy: 'OnFailure',
      terminationGracePeriodSeconds: 10,
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      ...(nodeSelector ? { nodeSelector } : {}),
      ...(settings.imagePullSecrets?.length ? { imagePullSecrets: settings.imagePullSecrets.map((name) => ({ name })) } : {}),
      // Spread over nodes (the main pod's too): preferred, so a one-node cluster still runs them.
      affinity: {
        podAntiAffinity: {
          preferredDuringSchedulingIgnoredDuringExecution: [
            {
              weight: 100,
              podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { 'app.kubernetes.io/instance': names.instance, 'app.kubernetes.io/name': 'trampoline' } } },
            },
          ],
        },
      },
      initContainers: [
        {
          name: INIT_CONTAINER,
          image,
          imagePullPolicy,
          command: [script, 'worker-init'],
          terminationMessagePolicy: 'FallbackToLogsOnError',
          securityContext: {
            runAsUser: 0,
            runAsGroup: 0,
            privileged: false,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'], add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '512Mi' } },
          volumeMounts: [{ name: 'store', mountPath: '/mnt/nix' }, scripts],
        },
      ],
      containers: [
        {
          name: DAEMON_CONTAINER,
          image,
          imagePullPolicy,
          command: [script, 'worker-daemon'],
          // The path the main daemon's forwarded secret-key-files names (entrypoint-daemon.sh worker-daemon).
          env: [...env, ...cacheEnv, { name: SIGNING_KEY_ENV, value: POD_SIGNING_KEY_FILE }],
          terminationMessagePolicy: 'FallbackToLogsOnError',
          // The build sandbox needs namespaces and mounts; nothing here faces the network.
          securityContext: { privileged: true, runAsUser: 0, runAsGroup: 0 },
          readinessProbe: {
            exec: { command: ['nix', '--extra-experimental-features', 'nix-command', 'store', 'ping', '--store', 'daemon'] },
            periodSeconds: 10,
            timeoutSeconds: 10,
            failureThreshold: 3,
          },
          resources: resources(farm.cpu, farm.memory),
          volumeMounts: [{ name: 'store', mountPath: '/nix' }, run, scripts],
        },
        {
          name: SSHD_CONTAINER,
          image,
          imagePullPolicy,
          command: [script, 'worker-sshd'],
          env: [...env, { name: 'HOME', value: '/var/empty' }, { name: 'USER', value: WORKER_USER }],
          terminationMessagePolicy: 'FallbackToLogsOnError',
          securityContext: {
            runAsUser: 1000,
            runAsGroup: 1000,
            runAsNonRoot: true,
            privileged: false,
            allowPrivilegeEscalation: false,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
          readinessProbe: { tcpSocket: { port: WORKER_SSH_PORT }, periodSeconds: 5, failureThreshold: 3 },
          resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '256Mi' } },
          volumeMounts: [
            { name: 'store', mountPath: '/nix' },
            run,
            scripts,
            { name: 'ssh', mountPath: FARM_KEY_DIR, readOnly: true },
            { name: 'scripts', mountPath: '/etc/passwd', subPath: 'passwd', readOnly: true },
            { name: 'scripts', mountPath: '/etc/group', subPath: 'group', readOnly: true },
          ],
          ports: [{ name: 'ssh', containerPort: WORKER_SSH_PORT }],
        },
      ],
      volumes: [
        // The worker's store: a cache that goes with the pod (see the file's comment).
        { name: 'store', emptyDir: {} },
        { name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
        { name: 'scripts', configMap: { name: names.scripts, defaultMode: 0o555 } },
        // Only the host key and authorized_keys: never the client key. 0444 as in the main
        // pod (no fsGroup); entrypoint-daemon.sh worker-sshd copies them into 0600 files for sshd.
        {
          name: 'ssh',
          secret: {
            secretName: farmSecretName(names),
            defaultMode: 0o444,
            items: [
              { key: FARM_SECRET_KEYS.hostPrivateKey, path: FARM_SECRET_KEYS.hostPrivateKey },
              { key: FARM_SECRET_KEYS.authorizedKeys, path: FARM_SECRET_KEYS.authorizedKeys },
            ],
          },
        },
      ],
    },
  }
}

export interface FarmSecretInput {
  names: InstanceNames
  labels: Record<string, string>
  client: { privateKey: string; publicKey: string }
  host: { privateKey: string; publicKey: string }
  farm: FarmSettings
}

/** `restrict` (no pty, forwarding, agent, X11, rc) and a forced command: the key only ever opens the worker's store. */
export function workerAuthorizedKeys(clientPublicKey: string): string {
  const [type, data] = clientPublicKey.trim().split(/\s+/)
  return `restrict,command="${WORKER_FORCED_COMMAND}" ${type} ${data} trampoline-farm-client\n`
}

export function farmSecretLabels(labels: Record<string, string>): Record<string, string> {
  return { ...labels, [COMPONENT_LABEL]: FARM_COMPONENT }
}

/**
 * No ownerReference: the client key and the pinned host key are the farm's identity and
 * outlive pods (`down` keeps the Secret, `clean` and `gc --include-stores` remove it).
 */
export function buildFarmSecret(input: FarmSecretInput): V1Secret {
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64')
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: farmSecretName(input.names),
      labels: farmSecretLabels(input.labels),
      annotations: { [FARM_SETTINGS_ANNOTATION]: JSON.stringify(input.farm) },
    },
    type: 'Opaque',
    data: {
      [FARM_SECRET_KEYS.clientPrivateKey]: b64(input.client.privateKey),
      [FARM_SECRET_KEYS.clientPublicKey]: b64(input.client.publicKey),
      [FARM_SECRET_KEYS.hostPrivateKey]: b64(input.host.privateKey),
      [FARM_SECRET_KEYS.hostPublicKey]: b64(input.host.publicKey),
      [FARM_SECRET_KEYS.authorizedKeys]: b64(workerAuthorizedKeys(input.client.publicKey)),
    },
  }
}

/** The farm settings a Secret records; undefined when absent or unreadable. */
export function farmSettingsFromSecret(secret: Pick<V1Secret, 'metadata'> | undefined): FarmSettings | undefined {
  const raw = secret?.metadata?.annotations?.[FARM_SETTINGS_ANNOTATION]
  if (!raw) return undefined
  try {
    const value = JSON.parse(raw) as Partial<FarmSettings>
    if (typeof value.workers !== 'number' || !value.cpu?.request || !value.memory?.request) return undefined
    return { workers: value.workers, cpu: value.cpu, memory: value.memory, arches: Array.isArray(value.arches) ? value.arches.map(String) : [] }
  } catch {
    return undefined
  }
}

/** A worker as the main daemon sees it: its pod name (the ssh host alias), address and abilities. */
export interface WorkerEndpoint {
  name: string
  ip: string
  /** Nix systems it builds for, e.g. x86_64-linux (first: its own). */
  systems: string[]
  features: string[]
  maxJobs: number
  speedFactor: number
}

/**
 * The machines file (nix.conf `builders = @file`): one line per worker, addressed by pod
 * name (the ssh config maps it to the IP), with the client key and the pinned host key.
 */
export function machinesFile(workers: WorkerEndpoint[], hostPublicKey: string): string {
  const [type, data] = hostPublicKey.trim().split(/\s+/)
  const pinned = Buffer.from(`${type} ${data}`, 'utf8').toString('base64')
  const list = (items: string[]) => (items.length ? items.join(',') : '-')
  return workers
    .map((w) => [`ssh-ng://${WORKER_USER}@${w.name}`, list(w.systems), FARM_CLIENT_KEY_FILE, String(w.maxJobs), String(w.speedFactor), list(w.features), '-', pinned].join(' '))
    .map((line) => `${line}\n`)
    .join('')
}

/**
 * ssh options for the main daemon's connections to workers (NIX_SSHOPTS=-F this file):
 * pod name to IP, port, key, and bounds on every wait, so a dead worker is noticed (and
 * named) in seconds. Nix passes the pinned host key as its own known_hosts file.
 */
export function farmSshConfig(workers: Pick<WorkerEndpoint, 'name' | 'ip'>[]): string {
  return workers
    .map((w) =>
      [
        `Host ${w.name}`,
        `  HostName ${w.ip}`,
        // Known-hosts lookups by the pod name Nix pins the key for, not by the changing IP.
        `  HostKeyAlias ${w.name}`,
        `  Port ${WORKER_SSH_PORT}`,
        `  User ${WORKER_USER}`,
        `  IdentityFile ${FARM_CLIENT_KEY_FILE}`,
        '  IdentitiesOnly yes',
        '  BatchMode yes',
        '  StrictHostKeyChecking yes',
        '  CheckHostIP no',
        '  ConnectTimeout 10',
        '  ServerAliveInterval 5',
        '  ServerAliveCountMax 3',
        // INFO: ssh's one line when a worker goes away names it ("Connection to <pod> closed
        // by remote host.", "Timeout, server <pod> not responding."); Nix's own error does not.
        '  LogLevel INFO',
        '',
      ].join('\n'),
    )
    .join('')
}

/** Nix system of a machine from `uname -m`-style names, for a worker that did not say. */
export function systemForArch(arch: string | undefined): string | undefined {
  const map: Record<string, string> = { amd64: 'x86_64-linux', x86_64: 'x86_64-linux', arm64: 'aarch64-linux', aarch64: 'aarch64-linux' }
  return arch ? map[arch] : undefined
}
