// The build farm (`setup --workers N`): make the instance's worker pods match the
// settings, then point the main nix-daemon at them. Kubernetes schedules the workers,
// Nix distributes derivations (the main daemon's build hook, `builders`); nothing here
// schedules builds.
//
// Order of a sync: farm Secret (keys, recorded settings) -> workers removed, reused or
// (re)created -> all Ready -> each asked for its Nix system and features -> the main
// daemon's ssh config and machines file rewritten (exec, as root) -> every worker pinged
// through the main daemon with the real key and pinned host key, so a broken farm fails
// setup instead of the first build.
import type { V1Pod, V1Secret } from '@kubernetes/client-node'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError, isConflict, isNotFound } from '../kube/client.ts'
import { execCapture } from '../kube/exec.ts'
import { readOptionalSecret } from '../pod/objects.ts'
import { DAEMON_CONTAINER, FARM_MACHINES_FILE } from '../pod/contract.ts'
import { stoppedPod } from '../pod/stopped.ts'
import { waitForPodGone } from '../pod/wait.ts'
import { captureInPod } from '../pod/run.ts'
import { writeFileArgv } from '../pod/write-file.ts'
import { generateKeyPair } from '../ssh/keys.ts'
import { COMPONENT_LABEL, instanceSelector } from '../instance.ts'
import { podOwnerReference } from '../manifests/configmap.ts'
import { decodeSecretData } from '../manifests/secret.ts'
import { SPEC_HASH_ANNOTATION, withSpecHash, type PodSettings, type ResourceSetting } from '../manifests/pod.ts'
import {
  buildFarmSecret,
  buildWorkerPod,
  DEFAULT_FARM,
  FARM_CLIENT_KEY_FILE,
  FARM_SECRET_KEYS,
  FARM_SETTINGS_ANNOTATION,
  FARM_SSH_CONFIG_FILE,
  farmSecretName,
  farmSettingsFromSecret,
  farmSshConfig,
  machinesFile,
  maxJobsFor,
  speedFactorFor,
  systemForArch,
  WORKER_COMPONENT,
  WORKER_USER,
  workerSlots,
  type FarmSettings,
  type WorkerEndpoint,
  type WorkerSlot,
} from '../manifests/worker.ts'
import { info } from '../log.ts'

/** What the command line asked for; undefined fields keep what the farm Secret records. */
export interface FarmOptions {
  workers?: number
  cpu?: ResourceSetting
  memory?: ResourceSetting
  arches?: string[]
}

export interface WorkerInfo {
  pod: string
  node: string | null
  ip: string | null
  arch: string | null
  systems: string[]
  maxJobs: number
  reused: boolean
}

export interface FarmResult {
  workers: WorkerInfo[]
  settings: FarmSettings
}

/** The farm to run: the options over what was recorded; undefined when there never was one. Pure. */
export function resolveFarm(options: FarmOptions, recorded: FarmSettings | undefined): FarmSettings | undefined {
  const asked = options.workers !== undefined || options.cpu || options.memory || options.arches?.length
  if (!asked && !recorded) return undefined
  const base = recorded ?? { workers: 0, ...DEFAULT_FARM }
  return {
    workers: options.workers ?? base.workers,
    cpu: options.cpu ?? base.cpu,
    memory: options.memory ?? base.memory,
    arches: options.arches?.length ? [...new Set(options.arches)] : base.arches,
  }
}

/** Whether the instance runs a farm after this setup (asked for now, or recorded by an earlier one). */
export async function hasFarm(context: Pick<CommandContext, 'cluster' | 'names'>, options: FarmOptions): Promise<boolean> {
  return resolveFarm(options, farmSettingsFromSecret(await readOptionalSecret(context.cluster, farmSecretName(context.names)))) !== undefined
}

export function workerSelector(instance: string): string {
  return `${instanceSelector(instance)},${COMPONENT_LABEL}=${WORKER_COMPONENT}`
}

export async function listWorkers(context: Pick<CommandContext, 'cluster' | 'names'>): Promise<V1Pod[]> {
  const { cluster, names } = context
  try {
    return (await cluster.core.listNamespacedPod({ namespace: cluster.namespace, labelSelector: workerSelector(names.instance) })).items
  } catch (error) {
    throw explainApiError(error, cluster, 'list worker pods')
  }
}

/** Why an existing worker must be replaced by the desired one, or undefined to keep it. Pure. */
export function workerReplaceReason(existing: V1Pod, desired: V1Pod): string | undefined {
  if (existing.metadata?.deletionTimestamp) return 'it is being deleted'
  if (stoppedPod(existing)) return 'it had stopped'
  if (existing.status?.phase === 'Failed') return 'it had failed'
  if (existing.metadata?.ownerReferences?.[0]?.uid !== desired.metadata?.ownerReferences?.[0]?.uid) return 'it belonged to an earlier pod of the instance'
  if (existing.metadata?.annotations?.[SPEC_HASH_ANNOTATION] !== desired.metadata?.annotations?.[SPEC_HASH_ANNOTATION]) return 'its settings changed'
  return undefined
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !!pod.status.podIP && (pod.status.containerStatuses ?? []).every((c) => c.ready)
}

/** Delete worker pods and wait until they are gone (a namesake cannot be created before). */
export async function deleteWorkers(context: Pick<CommandContext, 'cluster'>, pods: V1Pod[], timeoutSeconds = 120): Promise<string[]> {
  const { cluster } = context
  const deleted: string[] = []
  await Promise.all(
    pods.map(async (pod) => {
      const name = pod.metadata!.name!
      const running = pod.status?.phase === 'Running'
      try {
        await cluster.core.deleteNamespacedPod({ name, namespace: cluster.namespace, gracePeriodSeconds: running ? undefined : 0, body: { preconditions: { uid: pod.metadata?.uid } } })
        deleted.push(name)
      } catch (error) {
        if (isNotFound(error) || (error as { code?: number }).code === 409) return
        throw explainApiError(error, cluster, `delete worker pod ${name}`)
      }
      if (!(await waitForPodGone(cluster, name, timeoutSeconds, pod.metadata?.uid))) {
        throw new UserError(`worker pod ${name} is still terminating after ${timeoutSeconds}s`, { hint: 'Run setup again in a while; check with: trampoline status', exitCode: ExitCode.failure })
      }
    }),
  )
  return deleted.sort()
}

async function ensureFarmSecret(context: CommandContext, farm: FarmSettings, existing: V1Secret | undefined): Promise<Record<string, string>> {
  const { cluster, names, labels } = context
  const name = farmSecretName(names)
  if (existing) {
    const data = decodeSecretData(existing)
    const missing = Object.values(FARM_SECRET_KEYS).filter((k) => !data[k])
    if (missing.length) {
      throw new UserError(`secret ${name} lacks ${missing.join(', ')}`, { hint: `Delete it (workers get new keys): kubectl delete secret ${name}; then run setup again.`, exitCode: ExitCode.failure })
    }
    const recorded = JSON.stringify(farm)
    if (existing.metadata?.annotations?.[FARM_SETTINGS_ANNOTATION] !== recorded) {
      const patched: V1Secret = { ...existing, metadata: { ...existing.metadata, annotations: { ...existing.metadata?.annotations, [FARM_SETTINGS_ANNOTATION]: recorded } } }
      try {
        await cluster.core.replaceNamespacedSecret({ name, namespace: cluster.namespace, body: patched })
      } catch (error) {
        throw explainApiError(error, cluster, `update secret ${name}`)
      }
    }
    return data
  }
  const client = generateKeyPair(`farm-client@trampoline-${names.instance}`)
  const host = generateKeyPair(`farm-host@trampoline-${names.instance}`)
  const secret = buildFarmSecret({ names, labels, client, host, farm })
  try {
    await cluster.core.createNamespacedSecret({ namespace: cluster.namespace, body: secret })
    info(`created farm secret ${name} (workers' pinned host key, the main daemon's client key)`)
  } catch (error) {
    // Another setup made it first: use theirs.
    if (isConflict(error)) return ensureFarmSecret(context, farm, await readOptionalSecret(cluster, name))
    throw explainApiError(error, cluster, `create secret ${name}`)
  }
  return decodeSecretData(secret)
}

/** Make the workers match `farm` and wire them into the main daemon; undefined when the instance has no farm. */
export async function syncFarm(
  context: CommandContext,
  mainPod: V1Pod,
  podSettings: PodSettings,
  options: FarmOptions,
  timeoutSeconds: number,
): Promise<FarmResult | undefined> {
  const { cluster, names, labels } = context
  const secret = await readOptionalSecret(cluster, farmSecretName(names))
  const farm = resolveFarm(options, farmSettingsFromSecret(secret))
  if (!farm) return undefined
  const keys = await ensureFarmSecret(context, farm, secret)

  const owner = podOwnerReference(mainPod)
  const slots = workerSlots(names, farm)
  const desired = new Map(slots.map((slot) => [slot.name, { slot, pod: withSpecHash(buildWorkerPod({ names, labels, pod: podSettings, farm, slot, owner })) }]))
  const existing = await listWorkers(context)

  const remove: V1Pod[] = []
  const keep = new Set<string>()
  for (const pod of existing) {
    const name = pod.metadata!.name!
    const want = desired.get(name)
    if (!want) {
      info(`removing worker ${name} (scaling to ${farm.workers}${farm.arches.length ? ` per arch ${farm.arches.join(', ')}` : ''})`)
      remove.push(pod)
      continue
    }
    const why = workerReplaceReason(pod, want.pod)
    if (why) {
      info(`replacing worker ${name}: ${why}`)
      remove.push(pod)
    } else keep.add(name)
  }
  // The main daemon must stop using workers before they go: write the file for the kept ones first.
  if (remove.length) {
    const survivors = existing.filter((p) => keep.has(p.metadata!.name!) && isReady(p))
    await writeMachines(context, await describeWorkers(context, survivors, farm), keys[FARM_SECRET_KEYS.hostPublicKey])
    await deleteWorkers(context, remove)
  }

  for (const [name, want] of desired) {
    if (keep.has(name)) continue
    try {
      await cluster.core.createNamespacedPod({ namespace: cluster.namespace, body: want.pod })
      info(`creating worker ${name}${want.slot.arch ? ` (${want.slot.arch})` : ''}`)
    } catch (error) {
      throw explainApiError(error, cluster, `create worker pod ${name}`)
    }
  }

  const ready = slots.length ? await waitForWorkers(context, slots, timeoutSeconds) : []
  const endpoints = await describeWorkers(context, ready, farm)
  await writeMachines(context, endpoints, keys[FARM_SECRET_KEYS.hostPublicKey])
  await checkWorkers(context, endpoints, keys[FARM_SECRET_KEYS.hostPublicKey])

  return {
    settings: farm,
    workers: ready.map((pod) => {
      const name = pod.metadata!.name!
      const endpoint = endpoints.find((e) => e.name === name)!
      return {
        pod: name,
        node: pod.spec?.nodeName ?? null,
        ip: pod.status?.podIP ?? null,
        arch: desired.get(name)?.slot.arch ?? null,
        systems: endpoint.systems,
        maxJobs: endpoint.maxJobs,
        reused: keep.has(name),
      }
    }),
  }
}

/** Poll until every worker is Ready (all containers) with an IP; fail on one that stopped. */
async function waitForWorkers(context: CommandContext, slots: WorkerSlot[], timeoutSeconds: number): Promise<V1Pod[]> {
  const deadline = Date.now() + timeoutSeconds * 1000
  const names = new Set(slots.map((s) => s.name))
  let last: V1Pod[] = []
  for (;;) {
    last = (await listWorkers(context)).filter((p) => names.has(p.metadata!.name!) && !p.metadata?.deletionTimestamp)
    const broken = last.find((p) => p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded')
    if (broken) {
      const message = broken.status?.containerStatuses?.map((c) => c.state?.terminated?.message?.trim()).find(Boolean)
      throw new UserError(`worker ${broken.metadata!.name} stopped while starting (${broken.status?.phase}${message ? `: ${message}` : ''})`, {
        hint: 'Its log says why: trampoline status, or kubectl logs <pod> -c nix-daemon / -c sshd. Run setup again to retry.',
        exitCode: ExitCode.podFailed,
      })
    }
    if (last.length === names.size && last.every(isReady)) return last.sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!))
    if (Date.now() > deadline) {
      const waiting = [...names].map((n) => {
        const pod = last.find((p) => p.metadata!.name === n)
        if (!pod) return `${n}: not created`
        const pending = pod.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False')?.message
        const waitingOn = pod.status?.containerStatuses?.find((c) => c.state?.waiting)?.state?.waiting
        return `${n}: ${pod.status?.phase ?? 'Pending'}${pending ? ` (${pending})` : waitingOn ? ` (${waitingOn.reason}${waitingOn.message ? `: ${waitingOn.message}` : ''})` : ''}`
      })
      throw new UserError(`workers not ready within ${timeoutSeconds}s: ${waiting.filter((w) => !w.includes('Running (')).join('; ')}`, {
        hint: 'Smaller --worker-cpu/--worker-memory fit more nodes; --workers 0 removes them. Check with: trampoline status',
        exitCode: ExitCode.podFailed,
      })
    }
    await new Promise((resolve) => setTimeout(resolve, 1000))
  }
}

/** Parse `name = value` lines of `nix config show`. Pure. */
export function parseNixConfig(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z0-9-]+) = (.*)$/.exec(line)
    if (match) out[match[1]] = match[2].trim()
  }
  return out
}

/** Each worker's Nix system(s) and features, asked of its own Nix. */
async function describeWorkers(context: CommandContext, pods: V1Pod[], farm: FarmSettings): Promise<WorkerEndpoint[]> {
  return Promise.all(
    pods.map(async (pod) => {
      const name = pod.metadata!.name!
      const arch = pod.spec?.nodeSelector?.['kubernetes.io/arch']
      const target = { kc: context.cluster.kc, namespace: context.cluster.namespace, pod: name, container: DAEMON_CONTAINER }
      let config: Record<string, string> = {}
      // `nix config show` since 2.20; `nix show-config` before (and still, deprecated).
      const script = 'nix --extra-experimental-features nix-command config show 2>/dev/null || nix --extra-experimental-features nix-command show-config'
      const result = await execCapture(target, ['sh', '-c', script]).catch((error: Error) => ({ exitCode: 255, stdout: '', stderr: error.message }))
      if (result.exitCode === 0) config = parseNixConfig(result.stdout)
      const system = config.system || systemForArch(arch)
      if (!system) throw new UserError(`could not ask worker ${name} for its Nix system: ${result.stderr.trim().slice(-300)}`, { exitCode: ExitCode.failure })
      const words = (text: string | undefined) => (text ?? '').split(/\s+/).filter(Boolean)
      const features = words(config['system-features'])
      return {
        name,
        ip: pod.status!.podIP!,
        systems: [system, ...words(config['extra-platforms']).filter((p) => p !== system)],
        features: features.length ? features : ['benchmark', 'big-parallel', 'nixos-test'],
        maxJobs: maxJobsFor(farm.cpu),
        speedFactor: speedFactorFor(farm.cpu),
      }
    }),
  )
}

/** The ssh config first (names the hosts), then the machines file (uses them). */
async function writeMachines(context: CommandContext, workers: WorkerEndpoint[], hostPublicKey: string): Promise<void> {
  // machines.all: every worker; the daemon container keeps `machines` to those that answer
  // (entrypoint-daemon.sh). Setup just checked them all, so both start equal.
  const machines = machinesFile(workers, hostPublicKey)
  for (const [file, text] of [
    [FARM_SSH_CONFIG_FILE, farmSshConfig(workers)],
    [`${FARM_MACHINES_FILE}.all`, machines],
    [FARM_MACHINES_FILE, machines],
  ] as const) {
    const result = await captureInPod(context, writeFileArgv(file, text), { container: DAEMON_CONTAINER, input: text })
    if (result.exitCode !== 0) {
      throw new UserError(`could not write ${file} in the nix-daemon container (exit ${result.exitCode}): ${result.stderr.trim().slice(-300)}`, { exitCode: ExitCode.failure })
    }
  }
}

/**
 * From the main daemon, as its builds will: ssh with the farm key and the pinned host key,
 * `nix store ping`, which must not say the worker distrusts us (Nix would refuse the builds).
 */
async function checkWorkers(context: CommandContext, workers: WorkerEndpoint[], hostPublicKey: string): Promise<void> {
  if (!workers.length) return
  const [type, data] = hostPublicKey.trim().split(/\s+/)
  const pinned = Buffer.from(`${type} ${data}`, 'utf8').toString('base64')
  const script = [
    `export NIX_SSHOPTS="-F ${FARM_SSH_CONFIG_FILE}"`,
    'fail=0',
    'for host in "$@"; do',
    `  out=$(nix --extra-experimental-features nix-command store ping --store "ssh-ng://${WORKER_USER}@$host?ssh-key=${FARM_CLIENT_KEY_FILE}&base64-ssh-public-host-key=${pinned}" 2>&1) || { echo "$host: $out" | tail -n 3; fail=1; continue; }`,
    // Nix 2.15+ says whether the worker trusts us; older ones only that it answered.
    '  case $out in *"Trusted: 0"*) echo "$host: the worker does not trust the main daemon ($out)"; fail=1 ;; esac',
    'done',
    'exit $fail',
  ].join('\n')
  const result = await captureInPod(context, ['bash', '-c', script, 'trampoline-farm-check', ...workers.map((w) => w.name)], { container: DAEMON_CONTAINER })
  if (result.exitCode !== 0) {
    throw new UserError(`the instance's nix-daemon cannot use its workers:\n${(result.stdout + result.stderr).trim().slice(-1500)}`, {
      hint: 'The workers\' logs say more (kubectl logs <worker> -c sshd). Run setup again, or --workers 0 to build without them.',
      exitCode: ExitCode.failure,
    })
  }
}

/** What a worker is building: the build directories of its nix-daemon (best effort). */
export async function workerBuilds(context: Pick<CommandContext, 'cluster'>, pod: string): Promise<string[] | undefined> {
  const target = { kc: context.cluster.kc, namespace: context.cluster.namespace, pod, container: DAEMON_CONTAINER }
  const script = 'for d in /tmp/nix-build-*; do [ -d "$d" ] && echo "${d#/tmp/nix-build-}"; done; true'
  try {
    const result = await execCapture(target, ['bash', '-c', script])
    if (result.exitCode !== 0) return undefined
    // nix-build-<name>.drv-<n>: the derivation's name.
    return result.stdout.split('\n').filter(Boolean).map((d) => d.replace(/\.drv-\d+$/, ''))
  } catch {
    return undefined
  }
}
