// `trampoline setup`: make the instance exist and be Ready, idempotently. The PVC and the
// SSH Secret are the instance's identity and store: created once, then reused. The scripts
// ConfigMap follows the CLI's container/ files and belongs to the pod (ownerReference), so
// it goes when the pod goes. The pod is reused while it runs with the same spec, and
// replaced when it stopped (idle shutdown, failure) or its settings changed.
import type { CommandModule } from 'yargs'
import { PatchStrategy, setHeaderOptions, type V1ConfigMap, type V1OwnerReference, type V1PersistentVolumeClaim, type V1Pod } from '@kubernetes/client-node'
import { commandContext, printResult, type CommandContext, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError, isConflict, isNotFound } from '../kube/client.ts'
import { execCapture } from '../kube/exec.ts'
import { readPod } from '../pod/pods.ts'
import { POD_AUTHORIZED_KEYS, USER_CONTAINER } from '../pod/contract.ts'
import { stoppedPod } from '../pod/stopped.ts'
import { deleteObject, gracePeriodFor, summarise } from '../pod/objects.ts'
import { waitForPodGone, waitForPodReady } from '../pod/wait.ts'
import { PHASE_TEXT, type WaitPhase } from '../pod/diagnose.ts'
import { buildPod, buildPvc, hasFarmMounts, settingsFromPod, storeFromPvc, templateSettings, templateStore, withSpecHash, SPEC_HASH_ANNOTATION, ARCH_LABEL, type PodSettings, type StoreSettings } from '../manifests/pod.ts'
import { buildScriptsConfigMap, podOwnerReference, sameData } from '../manifests/configmap.ts'
import { loadScriptFiles, loadTemplate } from '../manifests/template.ts'
import {
  describeChanges,
  parseArch,
  parseIdleTimeout,
  parsePullPolicy,
  parseResource,
  parseSize,
  resolvePodSettings,
  parseCacheOptions,
  resolveStoreSettings,
  type SettingOptions,
} from '../manifests/settings.ts'
import { syncSshKeys } from '../ssh/keys.ts'
import { syncSigningKey } from '../signing/key.ts'
import { readNetrcFile, syncNetrc } from '../netrc.ts'
import { parseEgressOption, syncEgressPolicy } from '../egress.ts'
import { trustKeyLine } from '../signing/local-trust.ts'
import { hostAlias } from '../ssh/config.ts'
import { writeSshFiles } from '../ssh/files.ts'
import { parseDuration, formatDuration } from '../units.ts'
import { info, warn } from '../log.ts'
import { pointAtDoctor } from '../preflight/explain.ts'
import { checkArchAvailable, podSystem } from '../pod/system.ts'
import { hasFarm, syncFarm, type FarmOptions, type FarmResult } from '../farm/farm.ts'

interface SetupArgs extends GlobalOptions {
  arch?: string
  image?: string
  cpu?: string
  memory?: string
  storeSize?: string
  storageClass?: string
  idleTimeout?: string
  pullPolicy?: string
  substituter?: string[]
  trustedPublicKey?: string[]
  defaultCache?: boolean
  netrcFile?: string
  imagePullSecret?: string[]
  egress?: string[]
  workers?: number
  workerCpu?: string
  workerMemory?: string
  workerArch?: string[]
  timeout: string
}

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

/** The explicit options, parsed; a bad value is a usage error. */
export function parseSettingOptions(
  args: Pick<SetupArgs, 'arch' | 'image' | 'cpu' | 'memory' | 'idleTimeout' | 'pullPolicy' | 'substituter' | 'trustedPublicKey' | 'defaultCache' | 'imagePullSecret'>,
): SettingOptions {
  try {
    return {
      caches: parseCacheOptions({ substituter: args.substituter?.map(String), trustedPublicKey: args.trustedPublicKey?.map(String), defaultCache: args.defaultCache }),
      imagePullSecrets: args.imagePullSecret?.map(String).flatMap((s) => s.split(',')).filter(Boolean),
      image: args.image,
      pullPolicy: args.pullPolicy === undefined ? undefined : parsePullPolicy(args.pullPolicy),
      cpu: args.cpu === undefined ? undefined : parseResource('cpu', args.cpu),
      memory: args.memory === undefined ? undefined : parseResource('memory', args.memory),
      arch: args.arch === undefined ? undefined : args.arch === 'any' ? '' : parseArch(args.arch),
      idleTimeoutSeconds: args.idleTimeout === undefined ? undefined : parseIdleTimeout(args.idleTimeout),
    }
  } catch (error) {
    throw new UserError((error as Error).message, { exitCode: ExitCode.usage })
  }
}

/** The build-farm options (scripts/farm/farm.ts); a bad value is a usage error. */
export function parseFarmOptions(args: Pick<SetupArgs, 'workers' | 'workerCpu' | 'workerMemory' | 'workerArch'>): FarmOptions {
  try {
    if (args.workers !== undefined && (!Number.isInteger(args.workers) || args.workers < 0 || args.workers > 64)) {
      throw new Error(`--workers "${args.workers}" is not a whole number from 0 to 64`)
    }
    return {
      workers: args.workers,
      cpu: args.workerCpu === undefined ? undefined : parseResource('worker-cpu', args.workerCpu),
      memory: args.workerMemory === undefined ? undefined : parseResource('worker-memory', args.workerMemory),
      arches: args.workerArch?.map(String).flatMap((a) => a.split(',')).filter(Boolean).map((a) => parseArch(a)),
    }
  } catch (error) {
    throw new UserError((error as Error).message.replace('--arch', '--worker-arch'), { exitCode: ExitCode.usage })
  }
}

function parseTimeout(text: string): number {
  try {
    const seconds = parseDuration(text)
    if (seconds <= 0) throw new Error('zero')
    return seconds
  } catch {
    throw new UserError(`--timeout "${text}" is not a positive duration (e.g. 600, 10m)`, { exitCode: ExitCode.usage })
  }
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

export const command: CommandModule<GlobalOptions, SetupArgs> = {
  command: 'setup',
  describe: 'Create or reuse the instance (store volume, keys, scripts, pod) and wait until it is ready',
  builder: (yargs) =>
    yargs
      .option('image', { type: 'string', describe: 'Container image (full reference; default: the template\'s, or the running pod\'s)' })
      .option('pull-policy', { type: 'string', choices: ['IfNotPresent', 'Never', 'Always'], describe: 'imagePullPolicy (Never for images loaded onto the node, e.g. localhost/...)' })
      .option('arch', { type: 'string', describe: 'Node architecture: amd64, arm64... ("any" to drop an earlier choice)' })
      .option('cpu', { type: 'string', describe: 'CPU for builds (nix-daemon): REQUEST[:LIMIT], e.g. 4 or 2:8 or 2: (no limit)' })
      .option('memory', { type: 'string', describe: 'Memory for builds (nix-daemon): REQUEST[:LIMIT], e.g. 8Gi or 2Gi:16Gi' })
      .option('store-size', { type: 'string', describe: 'Size of the store volume when it is created, e.g. 50Gi' })
      .option('storage-class', { type: 'string', describe: 'StorageClass of the store volume (default: the cluster\'s default)' })
      .option('idle-timeout', { type: 'string', describe: 'Stop the pod after this long without activity: 30m, 2h, 900s; 0 = never' })
      .option('substituter', { type: 'string', array: true, describe: 'A binary cache for the pod (repeatable), added to cache.nixos.org unless --no-default-cache' })
      .option('trusted-public-key', { type: 'string', array: true, describe: 'A key the pod accepts cache paths signed with (repeatable), name:base64' })
      .option('default-cache', { type: 'boolean', describe: 'Use cache.nixos.org (--no-default-cache: only the --substituter ones)' })
      .option('netrc-file', { type: 'string', describe: 'netrc with credentials for private caches; kept in a Secret only the nix-daemon container mounts' })
      .option('egress', { type: 'string', array: true, describe: 'Limit the pod\'s network to DNS, these hosts/CIDRs (comma-separated) and its binary caches (a NetworkPolicy; "all" lifts it)' })
      .option('image-pull-secret', { type: 'string', array: true, describe: 'docker-registry Secret(s) for pulling --image from a private registry' })
      .option('workers', { type: 'number', describe: 'Build-farm worker pods (per --worker-arch): remote builders of this instance; 0 removes them' })
      .option('worker-cpu', { type: 'string', describe: 'CPU per worker: REQUEST[:LIMIT] (default 1); also its parallel builds' })
      .option('worker-memory', { type: 'string', describe: 'Memory per worker: REQUEST[:LIMIT] (default 1Gi:8Gi)' })
      .option('worker-arch', { type: 'string', array: true, describe: 'Node architecture of workers (repeatable: --workers N of each, for mixed-system builds)' })
      .option('timeout', { type: 'string', default: '10m', describe: 'How long to wait for the pod to be ready' })
      .example('$0 setup', 'create or resume the instance of this repository')
      .example('$0 setup --arch arm64 --cpu 8 --memory 16Gi', 'a bigger builder on an arm64 node')
      .example('$0 setup --image localhost/trampoline:test --pull-policy Never', 'an image loaded onto the node')
      .example('$0 setup --workers 4 --worker-cpu 8 --worker-memory 16Gi', 'four more pods building for this one (Nix remote builders)')
      .example('$0 setup --substituter https://cache.example.org --trusted-public-key cache.example.org-1:AAAA...', 'a private cache besides cache.nixos.org'),
  handler: async (args) => {
    const options = parseSettingOptions(args)
    const farmOptions = parseFarmOptions(args)
    const timeoutSeconds = parseTimeout(args.timeout)
    let storeOptions: Partial<StoreSettings>
    try {
      storeOptions = { size: args.storeSize === undefined ? undefined : parseSize('store-size', args.storeSize), storageClass: args.storageClass }
    } catch (error) {
      throw new UserError((error as Error).message, { exitCode: ExitCode.usage })
    }
    const egress = args.egress ? parseEgressOption(args.egress.map(String)) : undefined
    const context = commandContext(args)
    // A node of that arch must exist, or the pod would wait out --timeout as Pending.
    if (options.arch) await checkArchAvailable(context, options.arch)
    // Workers too: a worker of an arch no node has would hold setup until --timeout.
    for (const arch of farmOptions.arches ?? []) await checkArchAvailable(context, arch)
    if (args.netrcFile) {
      const change = await syncNetrc(context, readNetrcFile(args.netrcFile))
      if (change !== 'unchanged') info(`${change} the cache credentials in secret ${context.names.netrcSecret}`)
    }
    // Failures the cluster's set-up explains (rights, Pod Security, volume, nodes) also point at doctor.
    const result = await setup(context, options, storeOptions, timeoutSeconds, farmOptions).catch((error: unknown) => {
      throw pointAtDoctor(error)
    })
    if (egress) await syncEgressPolicy(context, egress, result.substituters)
    writeSshFiles(context, args)
    printResult(context, result, () => summary(result))
  },
}

function summary(result: SetupResult): string {
  return [
    `instance "${result.instance}" is ready${result.reused ? ' (reused the running pod)' : ''}: pod ${result.pod} on ${result.node ?? 'unknown node'}${result.arch ? ` (${result.arch})` : ''}${result.system ? `, Nix system ${result.system}` : ''}`,
    `  image ${result.image}`,
    `  binary caches: ${result.substituters.length ? result.substituters.join(', ') : 'none'}`,
    ...(result.farm
      ? [
          result.farm.workers.length
            ? `  workers (remote builders): ${result.farm.workers.map((w) => `${w.pod} on ${w.node ?? '?'} (${w.systems[0] ?? '?'}, ${w.maxJobs} job${w.maxJobs === 1 ? '' : 's'})`).join(', ')}`
            : '  workers: none',
        ]
      : []),
    `  next: trampoline push-tarball, trampoline build, trampoline shell, trampoline ssh${result.instance ? ` (--name ${result.instance})` : ''}`,
  ].join('\n')
}

export async function setup(
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
  await deleteObject(cluster, object, { gracePeriodSeconds: gracePeriodFor(object) })
  if (!(await waitForPodGone(cluster, names.pod, DELETE_TIMEOUT_SECONDS, object.uid))) {
    throw new UserError(`the old pod ${names.pod} is still terminating after ${DELETE_TIMEOUT_SECONDS}s`, {
      hint: 'Its node may be unreachable. Run setup again later, or check: trampoline status',
      exitCode: ExitCode.podFailed,
    })
  }
}

async function refreshPodAuthorizedKeys(context: CommandContext, authorizedKeys: string): Promise<void> {
  const target = { kc: context.cluster.kc, namespace: context.cluster.namespace, pod: context.names.pod, container: USER_CONTAINER }
  const script = `umask 077 && cat > ${POD_AUTHORIZED_KEYS}.new && mv -f ${POD_AUTHORIZED_KEYS}.new ${POD_AUTHORIZED_KEYS}`
  const result = await execCapture(target, ['sh', '-c', script], authorizedKeys).catch((error: Error) => ({ exitCode: 255, message: error.message, stderr: '' }))
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
