import { describe, expect, it } from 'vitest'
import { Pod } from 'kubernetes-models/v1/Pod'
import { Secret } from 'kubernetes-models/v1/Secret'
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js'
import type { V1Pod } from '@kubernetes/client-node'
import { labelsFor, namesFor } from '../instance.ts'
import { buildPod, hasFarmMounts, templateSettings, type PodSettings } from './pod.ts'
import { loadTemplate } from './template.ts'
import {
  buildFarmSecret,
  buildWorkerPod,
  cpuCores,
  FARM_CLIENT_KEY_FILE,
  FARM_SECRET_KEYS,
  farmSecretName,
  farmSettingsFromSecret,
  farmSshConfig,
  machinesFile,
  maxJobsFor,
  speedFactorFor,
  workerAuthorizedKeys,
  workerSlots,
  type FarmSettings,
} from './worker.ts'

function expectValid(object: { kind?: string }, model: typeof Pod | typeof Secret): void {
  new model(object as never).validate()
  const type = `V1${object.kind}`
  const roundTrip = ObjectSerializer.serialize(ObjectSerializer.deserialize(structuredClone(object), type, ''), type, '')
  expect(roundTrip, `${object.kind} has fields the API does not know`).toEqual(object)
}

const names = namesFor('web')
const labels = labelsFor('web', 'me.laptop')
const settings: PodSettings = {
  image: 'ghcr.io/acme/trampoline:1.2',
  pullPolicy: 'IfNotPresent',
  cpu: { request: '2' },
  memory: { request: '4Gi' },
  idleTimeoutSeconds: 900,
  caches: { substituters: ['https://cache.example.org'], trustedPublicKeys: ['cache.example.org-1:AAAA'] },
  imagePullSecrets: ['regcred'],
}
const farm: FarmSettings = { workers: 2, cpu: { request: '1500m', limit: '4' }, memory: { request: '2Gi', limit: '8Gi' }, arches: [] }
const owner = { apiVersion: 'v1', kind: 'Pod', name: names.pod, uid: 'uid-1' }
const hostKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyHostKeyHostKeyHostKeyHostKeyHost farm-host@x\n'

describe('worker slots', () => {
  it('numbers workers, per arch when arches are chosen', () => {
    expect(workerSlots(names, { workers: 2, arches: [] }).map((s) => s.name)).toEqual(['trampoline-web-worker-0', 'trampoline-web-worker-1'])
    expect(workerSlots(names, { workers: 1, arches: ['amd64', 'arm64'] })).toEqual([
      { name: 'trampoline-web-worker-amd64-0', index: 0, arch: 'amd64' },
      { name: 'trampoline-web-worker-arm64-0', index: 0, arch: 'arm64' },
    ])
    expect(workerSlots(names, { workers: 0, arches: ['amd64'] })).toEqual([])
  })
})

describe('max-jobs and speed factor from CPU', () => {
  it('reads quantities', () => {
    expect(cpuCores('100m')).toBe(0.1)
    expect(cpuCores('2')).toBe(2)
    expect(cpuCores('1.5')).toBe(1.5)
    expect(cpuCores('lots')).toBeNaN()
  })
  it('runs one build per requested core, at least one', () => {
    expect(maxJobsFor({ request: '100m' })).toBe(1)
    expect(maxJobsFor({ request: '1500m' })).toBe(2)
    expect(maxJobsFor({ request: '8' })).toBe(8)
    expect(speedFactorFor({ request: '100m' })).toBe(1)
    expect(speedFactorFor({ request: '4' })).toBe(4)
  })
})

describe('worker pod', () => {
  const slot = workerSlots(names, { workers: 1, arches: ['arm64'] })[0]
  const pod = buildWorkerPod({ names, labels, pod: settings, farm, slot, owner })
  const container = (name: string) => pod.spec!.containers.find((c) => c.name === name)!

  it('is a valid Pod', () => expectValid(pod, Pod))

  it('is labelled as a worker of the instance and owned by the main pod', () => {
    expect(pod.metadata!.name).toBe('trampoline-web-worker-arm64-0')
    expect(pod.metadata!.labels).toMatchObject({ ...labels, 'app.kubernetes.io/component': 'worker', 'trampoline.dev/worker-index': '0' })
    expect(pod.metadata!.ownerReferences).toEqual([owner])
  })

  it('has no service-account token, workspace or user container', () => {
    expect(pod.spec!.automountServiceAccountToken).toBe(false)
    expect(pod.spec!.containers.map((c) => c.name)).toEqual(['nix-daemon', 'sshd'])
    expect(pod.spec!.volumes!.some((v) => v.persistentVolumeClaim)).toBe(false)
  })

  it('keeps its store in an emptyDir', () => {
    expect(pod.spec!.volumes!.find((v) => v.name === 'store')).toEqual({ name: 'store', emptyDir: {} })
    expect(container('nix-daemon').volumeMounts).toContainEqual({ name: 'store', mountPath: '/nix' })
  })

  it('makes only the daemon privileged; sshd runs as UID 1000 without capabilities', () => {
    expect(container('nix-daemon').securityContext).toMatchObject({ privileged: true, runAsUser: 0 })
    expect(container('sshd').securityContext).toMatchObject({ runAsUser: 1000, runAsNonRoot: true, privileged: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
  })

  it('mounts only the host key and authorized_keys of the farm Secret, in sshd only', () => {
    const ssh = pod.spec!.volumes!.find((v) => v.secret)!
    expect(ssh.secret!.secretName).toBe(farmSecretName(names))
    expect(ssh.secret!.items!.map((i) => i.key).sort()).toEqual([FARM_SECRET_KEYS.authorizedKeys, FARM_SECRET_KEYS.hostPrivateKey])
    expect(container('nix-daemon').volumeMounts!.some((m) => m.name === ssh.name)).toBe(false)
  })

  it('sizes the daemon from the farm settings and follows the main pod\'s image, caches and idle timeout', () => {
    expect(container('nix-daemon').resources).toEqual({ requests: { cpu: '1500m', memory: '2Gi' }, limits: { cpu: '4', memory: '8Gi' } })
    for (const c of [...pod.spec!.initContainers!, ...pod.spec!.containers]) expect(c.image).toBe(settings.image)
    expect(container('nix-daemon').env).toContainEqual({ name: 'TRAMPOLINE_SUBSTITUTERS', value: 'https://cache.example.org' })
    expect(container('sshd').env).toContainEqual({ name: 'TRAMPOLINE_IDLE_TIMEOUT', value: '900' })
    expect(pod.spec!.imagePullSecrets).toEqual([{ name: 'regcred' }])
  })

  it('selects its arch and prefers nodes without the instance\'s other pods', () => {
    expect(pod.spec!.nodeSelector).toEqual({ 'kubernetes.io/arch': 'arm64' })
    const term = pod.spec!.affinity!.podAntiAffinity!.preferredDuringSchedulingIgnoredDuringExecution![0]
    expect(term.podAffinityTerm.topologyKey).toBe('kubernetes.io/hostname')
    expect(term.podAffinityTerm.labelSelector!.matchLabels).toMatchObject({ 'app.kubernetes.io/instance': 'web' })
    expect(pod.spec!.affinity!.podAntiAffinity!.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined()
  })

  it('has no node selector without an arch', () => {
    const any = buildWorkerPod({ names, labels, pod: settings, farm, slot: workerSlots(names, { workers: 1, arches: [] })[0], owner })
    expect(any.spec!.nodeSelector).toBeUndefined()
  })
})

describe('farm Secret', () => {
  const client = { privateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n', publicKey: 'ssh-ed25519 AAAAclient farm-client@x\n' }
  const secret = buildFarmSecret({ names, labels, client, host: { privateKey: 'host-private', publicKey: hostKey }, farm })

  it('is a valid Secret without an owner, labelled component=farm', () => {
    expectValid(secret, Secret)
    expect(secret.metadata!.name).toBe('trampoline-web-farm')
    expect(secret.metadata!.ownerReferences).toBeUndefined()
    expect(secret.metadata!.labels!['app.kubernetes.io/component']).toBe('farm')
  })

  it('lets the client key in only with a forced nix-daemon --stdio and restrict', () => {
    expect(workerAuthorizedKeys(client.publicKey)).toBe('restrict,command="nix-daemon --stdio" ssh-ed25519 AAAAclient trampoline-farm-client\n')
    expect(Buffer.from(secret.data![FARM_SECRET_KEYS.authorizedKeys], 'base64').toString()).toBe(workerAuthorizedKeys(client.publicKey))
  })

  it('records the farm settings, read back as they were', () => {
    expect(farmSettingsFromSecret(secret)).toEqual(farm)
    expect(farmSettingsFromSecret(undefined)).toBeUndefined()
    expect(farmSettingsFromSecret({ metadata: { annotations: { 'trampoline.dev/farm': 'not json' } } })).toBeUndefined()
  })
})

describe('machines file and ssh config', () => {
  const workers = [
    { name: 'trampoline-web-worker-0', ip: '10.0.0.5', systems: ['x86_64-linux', 'i686-linux'], features: ['big-parallel', 'kvm'], maxJobs: 2, speedFactor: 2 },
    { name: 'trampoline-web-worker-1', ip: '10.0.0.6', systems: ['x86_64-linux'], features: [], maxJobs: 1, speedFactor: 1 },
  ]

  it('names each worker by pod, with the client key, jobs, speed, features and the pinned host key', () => {
    const pinned = Buffer.from('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyHostKeyHostKeyHostKeyHostKeyHost').toString('base64')
    expect(machinesFile(workers, hostKey)).toBe(
      `ssh-ng://trampoline@trampoline-web-worker-0 x86_64-linux,i686-linux ${FARM_CLIENT_KEY_FILE} 2 2 big-parallel,kvm - ${pinned}\n` +
        `ssh-ng://trampoline@trampoline-web-worker-1 x86_64-linux ${FARM_CLIENT_KEY_FILE} 1 1 - - ${pinned}\n`,
    )
    expect(machinesFile([], hostKey)).toBe('')
  })

  it('maps pod names to IPs, checks the host key under the pod name and bounds every wait', () => {
    const config = farmSshConfig(workers)
    expect(config).toContain('Host trampoline-web-worker-1\n  HostName 10.0.0.6\n  HostKeyAlias trampoline-web-worker-1\n  Port 2222\n')
    expect(config).toContain('StrictHostKeyChecking yes')
    expect(config).toContain('ConnectTimeout 10')
    expect(config).toContain('ServerAliveInterval 5')
    expect(config).toContain(`IdentityFile ${FARM_CLIENT_KEY_FILE}`)
  })
})

describe('the main pod\'s side of the farm', () => {
  const template = loadTemplate()
  const base = { names, labels, settings: templateSettings(template) }

  it('is absent without a farm (the pod stays what kubectl apply -k makes)', () => {
    expect(hasFarmMounts(buildPod(template, base))).toBe(false)
  })

  it('mounts the client key (0400) and a daemon-only emptyDir in nix-daemon only', () => {
    const pod: V1Pod = buildPod(template, { ...base, farm: true })
    expectValid(pod, Pod)
    expect(hasFarmMounts(pod)).toBe(true)
    const key = pod.spec!.volumes!.find((v) => v.name === 'farm')!
    expect(key.secret).toEqual({ secretName: 'trampoline-web-farm', optional: true, defaultMode: 0o400, items: [{ key: 'client_ed25519', path: 'client_ed25519' }] })
    expect(pod.spec!.volumes!.find((v) => v.name === 'farm-run')!.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '1Mi' })
    const user = pod.spec!.containers.find((c) => c.name === 'user')!
    expect(user.volumeMounts!.some((m) => m.name === 'farm' || m.name === 'farm-run')).toBe(false)
    const daemon = pod.spec!.containers.find((c) => c.name === 'nix-daemon')!
    expect(daemon.env).toContainEqual({ name: 'TRAMPOLINE_FARM_MACHINES', value: '/run/trampoline-farm/machines' })
  })
})
