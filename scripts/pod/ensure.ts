// The instance's objects, made to exist and be Ready, idempotently (what `setup` does). The
// PVC and the SSH Secret are the instance's identity and store: created once, then reused.
// The scripts ConfigMap follows the CLI's container/ files and belongs to the pod
// (ownerReference), so it goes when the pod goes. The pod is reused while it runs with the
// same spec, and replaced when it stopped (idle shutdown, failure) or its settings changed.
import { PatchStrategy, setHeaderOptions, type V1ConfigMap, type V1OwnerReference, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError, isConflict, isNotFound } from '../kube/client.ts'
import { execCapture } from '../kube/exec.ts'
import { readPod } from './pods.ts'
import { POD_AUTHORIZED_KEYS, USER_CONTAINER } from './contract.ts'
import { stoppedPod } from './stopped.ts'
import { writeFileArgv } from './write-file.ts'
import { deleteNow, summarise } from './objects.ts'
import { waitForPodGone, waitForPodReady } from './wait.ts'
import { PHASE_TEXT, type WaitPhase } from './diagnose.ts'
import { checkArchAvailable, podSystem } from './system.ts'
import { buildPod, buildPvc, hasFarmMounts, settingsFromPod, storeFromPvc, templateSettings, templateStore, withSpecHash, SPEC_HASH_ANNOTATION, ARCH_LABEL, type PodSettings, type StoreSettings } from '../manifests/pod.ts'
import { buildScriptsConfigMap, podOwnerReference, sameData } from '../manifests/configmap.ts'
import { loadScriptFiles, loadTemplate } from '../manifests/template.ts'
import { describeChanges, resolvePodSettings, resolveStoreSettings, type SettingOptions } from '../manifests/settings.ts'
import { syncSshKeys } from '../ssh/keys.ts'
import { syncSigningKey } from '../signing/key.ts'
import { trustKeyLine } from '../signing/local-trust.ts'
import { hostAlias } from '../ssh/config.ts'
import { formatDuration } from '../units.ts'
import { info, warn } from '../log.ts'
import { hasFarm, syncFarm, type FarmOptions, type FarmResult } from '../farm/farm.ts'
import { readNetrcFile, syncNetrc } from '../netrc.ts'
import { syncEgressPolicy } from '../egress.ts'
import type { EgressTarget } from '../manifests/egress.ts'
import { pointAtDoctor } from '../preflight/explain.ts'

const DELETE_TIMEOUT_SECONDS = 120

export type PodAction = { action: 'create' } | { action: 'reuse' } | { action: 'replace'; reason: string }

/** What to do with the pod that exists (if any), given the one we want. Pure. */
export function podAction(existing: V1Pod | undefined, desired: V1Pod, options: { hostKeyChanged: boolean }): PodAction {
  if (!existing) return { action: 'create' }
  if (existing.metadata?.deletionTimestamp) return { action: 'replace', reason: 'the previous pod is still being deleted' }
  const phase = existing.status?.phase
  const stopped = stoppedPod(existing)
  if (stopped) return { action: 'replace', reason: `it had stopped${stopped.idle ? ` (${stopped.idle})` : ''}` }
  if (phase === 'Failed') return { action: 'replace', reason: `it had failed${existing.status?.reason ? ` (${existing.status.reason})` : ''}` }
  if (options.hostKeyChanged) return { action: 'replace', reason: 'its SSH Secret was re-created with a new host key' }
  if (hasFarmMounts(desired) && !hasFarmMounts(existing)) return { action: 'replace', reason: 'the build farm needs its key and machines file in the nix-daemon container' }
  const want = desired.metadata?.annotations?.[SPEC_HASH_ANNOTATION]
  if (existing.metadata?.annotations?.[SPEC_HASH_ANNOTATION] !== want) {
    let changes: string[] = []
    try {
      changes = describeChanges(settingsFromPod(existing), settingsFromPod(desired))
    } catch {
      // A pod of another layout: say it generally.
    }
    return { action: 'replace', reason: changes.length ? `its settings changed: ${changes.join(', ')}` : 'its spec differs from this version of trampoline' }
  }
  return { action: 'reuse' }
}

export interface SetupResult {
  instance: string
  namespace: string
  pod: string
  node: string | null
  image: string
  arch: string | null
  phase: string
  reused: boolean
  /** The public key the pod signs its store paths with (trusted-public-keys format). */
  signingKey: string
  substituters: string[]
  /** The pod's Nix system (e.g. aarch64-linux), asked of the pod; null when it did not say. */
  system: string | null
  /** Build-farm workers (setup --workers N), the main daemon's remote builders; absent without a farm. */
  farm?: FarmResult
}

/** What `setup` asks for: its flags, parsed. */
export interface SetupRequest {
  options: SettingOptions
  store: Partial<StoreSettings>
  timeoutSeconds: number
  farm: FarmOptions
  /** --netrc-file: a local netrc whose credentials go into the netrc Secret. */
  netrcFile?: string
  /** --egress: the pod's NetworkPolicy ('all' lifts it). */
  egress?: EgressTarget[] | 'all'
}

/** All of `setup` in the cluster: checks first, the instance's objects, then its egress policy. */
export async function setupInstance(context: CommandContext, request: SetupRequest): Promise<SetupResult> {
  // A node of that arch must exist, or the pod would wait out --timeout as Pending.
  if (request.options.arch) await checkArchAvailable(context, request.options.arch)
  // Workers too: a worker of an arch no node has would hold setup until --timeout.
  for (const arch of request.farm.arches ?? []) await checkArchAvailable(context, arch)
  if (request.netrcFile) {
    const change = await syncNetrc(context, readNetrcFile(request.netrcFile))
    if (change !== 'unchanged') info(`${change} the cache credentials in secret ${context.names.netrcSecret}`)
  }
  // Failures the cluster's set-up explains (rights, Pod Security, volume, nodes) also point at doctor.
  const result = await ensureInstance(context, request.options, request.store, request.timeoutSeconds, request.farm).catch((error: unknown) => {
    throw pointAtDoctor(error)
  })
  if (request.egress) await syncEgressPolicy(context, request.egress, result.substituters)
  return result
}

async function ensureInstance(
  context: CommandContext,
  options: SettingOptions,
  storeOptions: Partial<StoreSettings>,
  timeoutSeconds: number,
  farmOptions: FarmOptions = {},
): Promise<SetupResult> {
  const { cluster, names, labels } = context
  const template = loadTemplate()
  const existingPod = await readPod(context)
  let existingSettings: PodSettings | undefined
  try {
    existingSettings = existingPod ? settingsFromPod(existingPod) : undefined
  } catch {
    existingSettings = undefined // a pod of another layout: start from the template
  }
  const settings = resolvePodSettings(options, existingSettings, templateSettings(template))
  if (!settings.image) throw new UserError('no image to run', { hint: 'Pass --image <reference>.', exitCode: ExitCode.usage })

  await ensurePvc(context, template, storeOptions)
  const identity = await syncSshKeys(context, hostAlias(names.instance))
  for (const change of identity.changes) info(change)
  const signing = await syncSigningKey(context)
  if (signing.created) {
    info(`created signing key secret ${names.signingSecret}; the pod signs what it builds with it`)
    info(`  to let your Nix check paths from this pod, add to /etc/nix/nix.conf (then restart nix-daemon):`)
    info(`    ${trustKeyLine(signing.publicKey)}`)
  }

  // An instance with a farm (now or recorded) has its side of it in the daemon container.
  const farmWanted = await hasFarm(context, farmOptions)
  const desired = withSpecHash(buildPod(template, { names, labels, settings, farm: farmWanted }))
  const plan = podAction(existingPod, desired, { hostKeyChanged: identity.secretCreated && !!existingPod })
  if (plan.action === 'replace') {
    info(`replacing pod ${names.pod}: ${plan.reason}`)
    await removePod(context, existingPod!)
  }

  const files = loadScriptFiles()
  let pod: V1Pod
  if (plan.action === 'reuse') {
    pod = existingPod!
    await ensureScriptsConfigMap(context, files, podOwnerReference(pod))
  } else {
    // The ConfigMap first (without an owner: the old pod's reference would let the
    // garbage collector take it), then the pod, then the pod becomes its owner.
    await ensureScriptsConfigMap(context, files, undefined)
    info(`creating pod ${names.pod} (image ${settings.image})`)
    pod = await createPod(context, desired)
    await ensureScriptsConfigMap(context, files, podOwnerReference(pod))
  }

  const started = Date.now()
  const ready = await waitForPodReady(cluster, {
    pod: names.pod,
    pvc: names.pvc,
    timeoutSeconds,
    onPhase: (phase, detail) => reportPhase(phase, detail, started),
  })

  // A running pod copied authorized_keys when it started: give it this machine's key now.
  if (plan.action === 'reuse' && identity.keyAdded) await refreshPodAuthorizedKeys(context, identity.authorizedKeys)
  // Workers belong to this pod (ownerReference) and become its daemon's remote builders.
  const farm = await syncFarm(context, ready, settings, farmOptions, timeoutSeconds)

  return {
    instance: names.instance,
    namespace: cluster.namespace,
    pod: names.pod,
    node: ready.spec?.nodeName ?? null,
    image: settings.image,
    arch: (await nodeArch(context, ready.spec?.nodeName)) ?? settings.arch ?? null,
    phase: ready.status?.phase ?? 'Running',
    reused: plan.action === 'reuse',
    signingKey: signing.publicKey,
    substituters: settings.caches?.substituters ?? [],
    system: (await podSystem(context, ready)) ?? null,
    ...(farm ? { farm } : {}),
  }
}

function reportPhase(phase: WaitPhase, detail: string | undefined, started: number): void {
  if (phase === 'creating') return
  const elapsed = formatDuration((Date.now() - started) / 1000)
  const short = detail?.trim().split('\n')[0]
  info(`  ${PHASE_TEXT[phase]}${short && phase !== 'ready' ? `: ${short.length > 160 ? `${short.slice(0, 157)}...` : short}` : ''} [${elapsed}]`)
}

async function ensurePvc(context: CommandContext, template: ReturnType<typeof loadTemplate>, storeOptions: Partial<StoreSettings>): Promise<void> {
  const { cluster, names, labels } = context
  let existing: V1PersistentVolumeClaim | undefined
  try {
    existing = await cluster.core.readNamespacedPersistentVolumeClaim({ name: names.pvc, namespace: cluster.namespace })
  } catch (error) {
    if (!isNotFound(error)) throw explainApiError(error, cluster, `read PVC ${names.pvc}`)
  }
  if (!existing) {
    const store = resolveStoreSettings(storeOptions, undefined, templateStore(template))
    info(`creating store volume ${names.pvc} (${store.size}${store.storageClass ? `, class ${store.storageClass}` : ', default class'})`)
    try {
      await cluster.core.createNamespacedPersistentVolumeClaim({ namespace: cluster.namespace, body: buildPvc(template, { names, labels, store }) })
    } catch (error) {
      if (!isConflict(error)) throw explainApiError(error, cluster, `create PVC ${names.pvc}`)
    }
    return
  }
  if (existing.metadata?.deletionTimestamp) {
    throw new UserError(`the store volume ${names.pvc} is being deleted`, {
      hint: 'Wait until it is gone (a pod still using it keeps it), then run setup again for a new one.',
      exitCode: ExitCode.failure,
    })
  }
  const current = storeFromPvc(existing)
  if (storeOptions.storageClass && storeOptions.storageClass !== (existing.spec?.storageClassName ?? '')) {
    warn(`the store volume ${names.pvc} keeps its StorageClass "${existing.spec?.storageClassName ?? 'none'}"; to change it, trampoline clean (this deletes the store) and setup again`)
  }
  if (storeOptions.size && storeOptions.size !== current.size) {
    try {
      await cluster.core.patchNamespacedPersistentVolumeClaim(
        { name: names.pvc, namespace: cluster.namespace, body: { spec: { resources: { requests: { storage: storeOptions.size } } } } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      info(`asked to resize the store volume ${names.pvc} from ${current.size} to ${storeOptions.size}`)
    } catch (error) {
      const explained = explainApiError(error, cluster, `resize PVC ${names.pvc}`)
      warn(`the store volume stays ${current.size}: ${explained.message}`)
    }
  }
}

async function ensureScriptsConfigMap(context: CommandContext, files: Record<string, string>, owner: V1OwnerReference | undefined): Promise<void> {
  const { cluster, names, labels } = context
  const body = buildScriptsConfigMap({ names, labels, files, owner })
  const doing = `write ConfigMap ${names.scripts}`
  for (let attempt = 0; attempt < 4; attempt++) {
    let existing: V1ConfigMap | undefined
    try {
      existing = await cluster.core.readNamespacedConfigMap({ name: names.scripts, namespace: cluster.namespace })
    } catch (error) {
      if (!isNotFound(error)) throw explainApiError(error, cluster, doing)
    }
    try {
      if (!existing) {
        await cluster.core.createNamespacedConfigMap({ namespace: cluster.namespace, body })
        return
      }
      const owners = existing.metadata?.ownerReferences ?? []
      const wantOwners = owner ? [owner] : []
      const sameOwners = owners.length === wantOwners.length && owners.every((o, i) => o.uid === wantOwners[i].uid)
      if (sameData(existing.data, body.data) && sameOwners) return
      if (!sameData(existing.data, body.data)) info(`updating the pod scripts in ConfigMap ${names.scripts}`)
      await cluster.core.replaceNamespacedConfigMap({
        name: names.scripts,
        namespace: cluster.namespace,
        body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion, ownerReferences: wantOwners } },
      })
      return
    } catch (error) {
      // Raced with another setup or with the garbage collector: look again.
      if (!isConflict(error) && !isNotFound(error)) throw explainApiError(error, cluster, doing)
    }
  }
  throw new UserError(`could not ${doing}: it kept changing under us`, { hint: 'Is another setup running for this instance? Try again.' })
}

async function createPod(context: CommandContext, body: V1Pod): Promise<V1Pod> {
  const { cluster, names } = context
  try {
    return await cluster.core.createNamespacedPod({ namespace: cluster.namespace, body })
  } catch (error) {
    if (isConflict(error)) {
      throw new UserError(`pod ${names.pod} was created by someone else meanwhile`, {
        hint: 'Is another setup running for this instance? Run setup again to reuse it.',
        exitCode: ExitCode.failure,
      })
    }
    throw explainApiError(error, cluster, `create pod ${names.pod}`)
  }
}

async function removePod(context: CommandContext, pod: V1Pod): Promise<void> {
  const { cluster, names } = context
  const object = summarise('Pod', pod.metadata, cluster.namespace, pod.status?.phase)
  await deleteNow(cluster, object)
  if (!(await waitForPodGone(cluster, names.pod, DELETE_TIMEOUT_SECONDS, object.uid))) {
    throw new UserError(`the old pod ${names.pod} is still terminating after ${DELETE_TIMEOUT_SECONDS}s`, {
      hint: 'Its node may be unreachable. Run setup again later, or check: trampoline status',
      exitCode: ExitCode.podFailed,
    })
  }
}

async function refreshPodAuthorizedKeys(context: CommandContext, authorizedKeys: string): Promise<void> {
  const target = { kc: context.cluster.kc, namespace: context.cluster.namespace, pod: context.names.pod, container: USER_CONTAINER }
  const result = await execCapture(target, writeFileArgv(POD_AUTHORIZED_KEYS, authorizedKeys), authorizedKeys).catch((error: Error) => ({ exitCode: 255, message: error.message, stderr: '' }))
  if (result.exitCode !== 0) {
    warn(`could not give the running pod this machine's SSH key (${result.message ?? result.stderr.trim()}); trampoline down && trampoline setup will`)
  }
}

/** The node's architecture label; undefined when we may not read nodes (common RBAC). */
async function nodeArch(context: CommandContext, nodeName: string | undefined): Promise<string | undefined> {
  if (!nodeName) return undefined
  try {
    return (await context.cluster.core.readNode({ name: nodeName })).metadata?.labels?.[ARCH_LABEL]
  } catch {
    return undefined
  }
}
