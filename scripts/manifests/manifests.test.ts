import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim'
import { Pod } from 'kubernetes-models/v1/Pod'
import { Secret } from 'kubernetes-models/v1/Secret'
// client-node's generated serializer knows every field of every type: a round trip drops
// fields that do not exist, which the JSON-schema validation above lets through.
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js'
import { labelsFor, namesFor } from '../instance.ts'
import { buildPod, buildPvc, settingsFromPod, storeFromPvc, templateSettings, templateStore, type PodSettings } from './pod.ts'
import { buildScriptsConfigMap, podOwnerReference, sameData } from './configmap.ts'
import { buildSshSecret, decodeSecretData } from './secret.ts'
import { agentKeyAction, agentKeyPatch, buildAgentSecret, storedAgentKey } from './agent-secret.ts'
import { containerDir, isScriptFile, loadKustomization, loadScriptFiles, loadTemplate, parseKustomization, parseTemplate } from './template.ts'

const template = loadTemplate()
const kustomization = loadKustomization()

/** Validate against the Kubernetes OpenAPI schema, including unknown fields. */
function expectValid(object: { kind?: string }): void {
  const models = { Pod, PersistentVolumeClaim, ConfigMap, Secret } as const
  const kind = object.kind as keyof typeof models
  expect(Object.keys(models)).toContain(kind)
  new models[kind](object as never).validate()
  const type = `V1${kind}`
  const roundTrip = ObjectSerializer.serialize(ObjectSerializer.deserialize(structuredClone(object), type, ''), type, '')
  expect(roundTrip, `${kind} has fields the API does not know`).toEqual(object)
}

const web = namesFor('web')
const webLabels = labelsFor('web', 'me.laptop')
const custom: PodSettings = {
  image: 'ghcr.io/acme/trampoline:1.2',
  pullPolicy: 'Never',
  cpu: { request: '4', limit: '8' },
  memory: { request: '16Gi', limit: '16Gi' },
  arch: 'arm64',
  idleTimeoutSeconds: 7200,
  caches: { substituters: ['https://cache.example.org/'], trustedPublicKeys: ['cache.example.org-1:k'] },
}

describe('the template', () => {
  it('is found next to the package, from scripts/ and from dist/ alike', () => {
    expect(containerDir()).toMatch(/\/container\/$/)
    expect(readdirSync(containerDir())).toContain('k8s-pod.yaml')
  })

  it('reads octal modes the way kubectl does (YAML 1.1)', () => {
    const modes = template.pod.spec!.volumes!.map((v) => v.configMap?.defaultMode ?? v.secret?.defaultMode).filter((m) => m !== undefined)
    expect(modes).toEqual([0o555, 0o444, 0o444, 0o400, 0o400])
  })

  it('stands for the defaults CLAUDE.md promises', () => {
    const settings = templateSettings(template)
    expect(settings.pullPolicy).toBe('IfNotPresent')
    expect(settings.arch).toBeUndefined()
    expect(settings.idleTimeoutSeconds).toBeGreaterThan(0)
    expect(templateStore(template).storageClass).toBeUndefined()
  })

  it('rejects a file without a pod', () => {
    expect(() => parseTemplate('apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\n')).toThrow(/must hold a Pod and a PersistentVolumeClaim/)
    expect(() => parseTemplate('kind: Pod\n  bad: indent: here\n')).toThrow(/k8s-pod.yaml/)
  })

  it('rejects a kustomization without the scripts generator', () => {
    expect(() => parseKustomization('resources: [k8s-pod.yaml]\n')).toThrow(/configMapGenerator/)
  })
})

describe('drift from kubectl apply -k container/', () => {
  // The template's own labels (owner "unknown") and defaults, for the instance "default".
  const labels = template.pod.metadata!.labels!
  const names = namesFor('default')

  it('rebuilds exactly the Pod of k8s-pod.yaml', () => {
    expect(labels).toEqual(labelsFor('default', 'unknown'))
    expect(buildPod(template, { names, labels, settings: templateSettings(template) })).toEqual(template.pod)
  })

  it('rebuilds exactly the PVC of k8s-pod.yaml', () => {
    expect(buildPvc(template, { names, labels, store: templateStore(template) })).toEqual(template.pvc)
  })

  it('packs the same files into the same ConfigMap as the configMapGenerator', () => {
    const files = loadScriptFiles()
    expect(Object.keys(files).sort()).toEqual([...kustomization.scripts.files].sort())
    expect(kustomization.resources).toEqual(['k8s-pod.yaml'])
    expect(kustomization.scripts.disableNameSuffixHash).toBe(true)
    const configMap = buildScriptsConfigMap({ names, labels: kustomization.scripts.labels, files })
    expect(configMap.metadata!.name).toBe(kustomization.scripts.name)
    expect(configMap.metadata!.labels).toEqual(labels)
    for (const file of kustomization.scripts.files) expect(configMap.data![file]).toBe(readFileSync(join(containerDir(), file), 'utf8'))
  })

  it('names every object the way CLAUDE.md says', () => {
    const pod = template.pod
    const volumes = Object.fromEntries(pod.spec!.volumes!.map((v) => [v.name, v]))
    expect(pod.metadata!.name).toBe(names.pod)
    expect(template.pvc.metadata!.name).toBe(names.pvc)
    expect(volumes.data.persistentVolumeClaim!.claimName).toBe(names.pvc)
    expect(volumes.scripts.configMap!.name).toBe(names.scripts)
    expect(volumes.ssh.secret!.secretName).toBe(names.sshSecret)
    expect(volumes.agent.secret!.secretName).toBe(names.agentSecret)
  })
})

describe('buildPod', () => {
  const pod = buildPod(template, { names: web, labels: webLabels, settings: custom })

  it('is a valid Pod', () => {
    expectValid(pod)
    expectValid(buildPod(template, { names: web, labels: webLabels, settings: templateSettings(template) }))
  })

  it('fills in the instance name and labels everywhere', () => {
    expect(pod.metadata!.name).toBe('trampoline-web')
    expect(pod.metadata!.labels).toEqual(webLabels)
    const volumes = Object.fromEntries(pod.spec!.volumes!.map((v) => [v.name, v]))
    expect(volumes.data.persistentVolumeClaim!.claimName).toBe('trampoline-web')
    expect(volumes.scripts.configMap!.name).toBe('trampoline-web-scripts')
    expect(volumes.ssh.secret!.secretName).toBe('trampoline-web-ssh')
    expect(volumes.agent.secret!.secretName).toBe('trampoline-web-agent')
  })

  it('mounts the agent Secret optionally, in the user container only', () => {
    const agent = pod.spec!.volumes!.find((v) => v.name === 'agent')!
    // The pod must start before any key was stored, and pick it up later.
    expect(agent.secret).toEqual({ secretName: 'trampoline-web-agent', optional: true, defaultMode: 0o444 })
    const mountsOf = (name: string) => pod.spec!.containers.find((c) => c.name === name)!.volumeMounts!.filter((m) => m.name === 'agent')
    expect(mountsOf('user')).toEqual([{ name: 'agent', mountPath: '/etc/trampoline/agent', readOnly: true }])
    expect(mountsOf('nix-daemon')).toEqual([])
    expect(pod.spec!.initContainers!.flatMap((c) => c.volumeMounts ?? []).filter((m) => m.name === 'agent')).toEqual([])
  })

  it('mounts the signing key into the nix-daemon container only, root-readable', () => {
    const signing = pod.spec!.volumes!.find((v) => v.name === 'signing')!
    expect(signing.secret).toEqual({ secretName: 'trampoline-web-signing', defaultMode: 0o400 })
    const mountsOf = (name: string) => pod.spec!.containers.find((c) => c.name === name)!.volumeMounts!.filter((m) => m.name === 'signing')
    expect(mountsOf('nix-daemon')).toEqual([{ name: 'signing', mountPath: '/etc/trampoline/signing', readOnly: true }])
    expect(mountsOf('user')).toEqual([])
    expect(pod.spec!.initContainers!.flatMap((c) => c.volumeMounts ?? []).filter((m) => m.name === 'signing')).toEqual([])
    const daemonEnv = pod.spec!.containers.find((c) => c.name === 'nix-daemon')!.env!
    expect(daemonEnv).toContainEqual({ name: 'TRAMPOLINE_SIGNING_KEY', value: '/etc/trampoline/signing/secret-key' })
  })

  it('passes binary caches to the nix-daemon container and reads them back', () => {
    const caches = { substituters: ['http://10.0.0.1:8080', 'https://cache.nixos.org/'], trustedPublicKeys: ['a-1:x', 'b-1:y'] }
    const built = buildPod(template, { names: web, labels: webLabels, settings: { ...custom, caches, imagePullSecrets: ['regcred'] } })
    const env = built.spec!.containers.find((c) => c.name === 'nix-daemon')!.env!
    expect(env).toContainEqual({ name: 'TRAMPOLINE_SUBSTITUTERS', value: 'http://10.0.0.1:8080 https://cache.nixos.org/' })
    expect(env).toContainEqual({ name: 'TRAMPOLINE_TRUSTED_PUBLIC_KEYS', value: 'a-1:x b-1:y' })
    expect(built.spec!.imagePullSecrets).toEqual([{ name: 'regcred' }])
    expect(settingsFromPod(built)).toMatchObject({ caches, imagePullSecrets: ['regcred'] })
    // The template's default: cache.nixos.org with its key.
    expect(templateSettings(template).caches).toEqual({
      substituters: ['https://cache.nixos.org/'],
      trustedPublicKeys: ['cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY='],
    })
  })

  it('mounts the passwd and group the user container needs (the official Nix image has no UID 1000)', () => {
    const user = pod.spec!.containers.find((c) => c.name === 'user')!
    expect(user.volumeMounts).toContainEqual({ name: 'scripts', mountPath: '/etc/passwd', subPath: 'passwd', readOnly: true })
    expect(user.volumeMounts).toContainEqual({ name: 'scripts', mountPath: '/etc/group', subPath: 'group', readOnly: true })
  })

  it('keeps the user container unprivileged: no escalation, no capabilities, no token, no host namespaces', () => {
    const user = pod.spec!.containers.find((c) => c.name === 'user')!
    expect(user.securityContext).toMatchObject({ runAsUser: 1000, runAsNonRoot: true, privileged: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
    expect(user.securityContext?.capabilities?.add).toBeUndefined()
    expect(pod.spec!.automountServiceAccountToken).toBe(false)
    expect(pod.spec!.hostPID ?? false).toBe(false)
    expect(pod.spec!.hostNetwork ?? false).toBe(false)
    expect(pod.spec!.hostIPC ?? false).toBe(false)
    expect(pod.spec!.shareProcessNamespace ?? false).toBe(false)
    expect(pod.spec!.volumes!.filter((v) => v.hostPath)).toEqual([])
  })

  it('refuses a template with a Secret volume it cannot name', () => {
    const odd = structuredClone(template)
    odd.pod.spec!.volumes!.push({ name: 'mystery', secret: { secretName: 'x' } })
    expect(() => buildPod(odd, { names: web, labels: webLabels, settings: custom })).toThrow(/unknown Secret volume "mystery"/)
  })

  it('uses one image and pull policy in every container', () => {
    const containers = [...pod.spec!.initContainers!, ...pod.spec!.containers]
    expect(containers.map((c) => c.name)).toEqual(['store-init', 'nix-daemon', 'user'])
    for (const c of containers) {
      expect(c.image).toBe('ghcr.io/acme/trampoline:1.2')
      expect(c.imagePullPolicy).toBe('Never')
    }
  })

  it('sizes the build container and leaves the others as the template has them', () => {
    const byName = Object.fromEntries(pod.spec!.containers.map((c) => [c.name, c]))
    expect(byName['nix-daemon'].resources).toEqual({ requests: { cpu: '4', memory: '16Gi' }, limits: { cpu: '8', memory: '16Gi' } })
    const templateUser = template.pod.spec!.containers.find((c) => c.name === 'user')!
    expect(byName.user.resources).toEqual(templateUser.resources)
  })

  it('drops a limit that is not asked for', () => {
    const noLimits = buildPod(template, { names: web, labels: webLabels, settings: { ...custom, cpu: { request: '2' }, memory: { request: '1Gi' } } })
    expect(noLimits.spec!.containers.find((c) => c.name === 'nix-daemon')!.resources).toEqual({ requests: { cpu: '2', memory: '1Gi' } })
    expectValid(noLimits)
  })

  it('selects the architecture only when asked', () => {
    expect(pod.spec!.nodeSelector).toEqual({ 'kubernetes.io/arch': 'arm64' })
    const anyArch = buildPod(template, { names: web, labels: webLabels, settings: { ...custom, arch: undefined } })
    expect(anyArch.spec!.nodeSelector).toBeUndefined()
  })

  it('passes the idle timeout in seconds to the user container', () => {
    const env = pod.spec!.containers.find((c) => c.name === 'user')!.env!
    expect(env.filter((e) => e.name === 'TRAMPOLINE_IDLE_TIMEOUT')).toEqual([{ name: 'TRAMPOLINE_IDLE_TIMEOUT', value: '7200' }])
  })

  it('leaves the template untouched', () => {
    const before = JSON.stringify(template)
    buildPod(template, { names: web, labels: webLabels, settings: custom })
    expect(JSON.stringify(template)).toBe(before)
  })

  it('reads its settings back (a later setup keeps them)', () => {
    expect(settingsFromPod(pod)).toEqual(custom)
    expect(settingsFromPod(buildPod(template, { names: web, labels: webLabels, settings: { ...custom, cpu: { request: '500m' }, arch: undefined, idleTimeoutSeconds: 0 } }))).toEqual({
      ...custom,
      cpu: { request: '500m' },
      arch: undefined,
      idleTimeoutSeconds: 0,
    })
  })
})

describe('buildPvc', () => {
  it('sets size and class, and omits the class for the cluster default', () => {
    const fast = buildPvc(template, { names: web, labels: webLabels, store: { size: '100Gi', storageClass: 'fast' } })
    expectValid(fast)
    expect(fast.metadata).toEqual({ name: 'trampoline-web', labels: webLabels })
    expect(fast.spec).toEqual({ accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Gi' } }, storageClassName: 'fast' })
    expect(storeFromPvc(fast)).toEqual({ size: '100Gi', storageClass: 'fast' })
    const plain = buildPvc(template, { names: web, labels: webLabels, store: { size: '5Gi' } })
    expect(plain.spec).not.toHaveProperty('storageClassName')
    expectValid(plain)
  })
})

describe('scripts ConfigMap', () => {
  const files = loadScriptFiles()

  it('holds every container/*.sh, nix.conf and sshd_config, and nothing else', () => {
    const names = Object.keys(files)
    expect(names).toContain('nix.conf')
    expect(names).toContain('sshd_config')
    expect(names).toContain('push-receive.sh')
    expect(names).toContain('maintenance.sh')
    expect(names.every(isScriptFile)).toBe(true)
    expect(names).not.toContain('k8s-pod.yaml')
    expect(isScriptFile('kustomization.yaml')).toBe(false)
  })

  it('is valid, and belongs to its pod when given one', () => {
    const owner = podOwnerReference({ metadata: { name: 'trampoline-web', uid: '0b6c2f1e-0000-4000-8000-000000000001' } })
    const configMap = buildScriptsConfigMap({ names: web, labels: webLabels, files, owner })
    expectValid(configMap)
    expect(configMap.metadata!.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Pod', name: 'trampoline-web', uid: '0b6c2f1e-0000-4000-8000-000000000001' }])
    expect(buildScriptsConfigMap({ names: web, labels: webLabels, files }).metadata).not.toHaveProperty('ownerReferences')
    expect(() => podOwnerReference({ metadata: { name: 'x' } })).toThrow(/uid/)
  })

  it('compares contents, not objects', () => {
    expect(sameData({ a: '1', b: '2' }, { b: '2', a: '1' })).toBe(true)
    expect(sameData({ a: '1' }, { a: '1', b: '2' })).toBe(false)
    expect(sameData({ a: '1' }, { a: '2' })).toBe(false)
    expect(sameData(undefined, {})).toBe(true)
  })
})

describe('SSH Secret', () => {
  it('holds the three files the user container copies, base64-encoded', () => {
    const secret = buildSshSecret({
      names: web,
      labels: webLabels,
      hostPrivateKey: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n',
      hostPublicKey: 'ssh-ed25519 AAAAhost host\n',
      authorizedKeys: 'ssh-ed25519 AAAAuser me\n',
    })
    expectValid(secret)
    expect(secret.metadata).toEqual({ name: 'trampoline-web-ssh', labels: webLabels })
    expect(Object.keys(secret.data!).sort()).toEqual(['authorized_keys', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub'])
    expect(decodeSecretData(secret)).toEqual({
      ssh_host_ed25519_key: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n',
      'ssh_host_ed25519_key.pub': 'ssh-ed25519 AAAAhost host\n',
      authorized_keys: 'ssh-ed25519 AAAAuser me\n',
    })
  })
})

describe('agent Secret', () => {
  const key = 'sk-ant-api03-test-only-not-a-key'

  it('holds the key under ANTHROPIC_API_KEY, labelled as the agent component, owned by no pod', () => {
    const secret = buildAgentSecret({ names: web, labels: webLabels, apiKey: key })
    expectValid(secret)
    expect(secret.metadata).toEqual({ name: 'trampoline-web-agent', labels: { ...webLabels, 'app.kubernetes.io/component': 'agent' } })
    expect(secret.metadata).not.toHaveProperty('ownerReferences')
    expect(decodeSecretData(secret)).toEqual({ ANTHROPIC_API_KEY: key })
    expect(storedAgentKey(secret)).toBe(key)
  })

  it('patches only the key and the labels', () => {
    const patch = agentKeyPatch(webLabels, 'sk-ant-new')
    expect(Object.keys(patch).sort()).toEqual(['data', 'metadata'])
    expect(Object.keys(patch.metadata!)).toEqual(['labels'])
    expect(decodeSecretData(patch)).toEqual({ ANTHROPIC_API_KEY: 'sk-ant-new' })
  })

  it('writes the key only when it is new or changed, and otherwise uses the stored one', () => {
    const stored = buildAgentSecret({ names: web, labels: webLabels, apiKey: key })
    expect(agentKeyAction(undefined, key)).toEqual({ action: 'create', key })
    expect(agentKeyAction(stored, key)).toEqual({ action: 'keep', key })
    expect(agentKeyAction(stored, 'sk-ant-other')).toEqual({ action: 'update', key: 'sk-ant-other' })
    expect(agentKeyAction(stored, undefined)).toEqual({ action: 'keep', key })
    expect(agentKeyAction(undefined, undefined)).toEqual({ action: 'missing' })
    // A Secret made by hand without the key field counts as holding none.
    expect(agentKeyAction({ data: { other: 'eA==' } }, undefined)).toEqual({ action: 'missing' })
    expect(agentKeyAction({ data: { other: 'eA==' } }, key)).toEqual({ action: 'update', key })
  })
})

describe('schema validation', () => {
  it('catches what the API server would reject', () => {
    const pod = buildPod(template, { names: web, labels: webLabels, settings: custom })
    const misspelt = structuredClone(pod) as any
    misspelt.spec.containers[0].imagePullPolicy = 'Sometimes'
    expect(() => expectValid(misspelt)).toThrow()
    const unknown = structuredClone(pod) as any
    unknown.spec.containers[0].resource = { limits: { cpu: '1' } }
    expect(() => expectValid(unknown)).toThrow(/fields the API does not know/)
  })
})
