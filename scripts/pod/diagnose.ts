// Why a pod is not Ready yet, and whether waiting longer can help: pure functions of the
// pod, its PVC and their Events, so every message is unit-tested against realistic objects.
import type { CoreV1Event, V1ContainerStatus, V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node'
import { INIT_CONTAINER } from './contract.ts'
import { stoppedPod } from './stopped.ts'

export interface PodSnapshot {
  pod?: V1Pod
  pvc?: V1PersistentVolumeClaim
  /** Events naming the pod or the PVC (they share the instance's name). */
  events: CoreV1Event[]
  /** Undefined when we may not list them (cluster-scoped RBAC). */
  storageClasses?: V1StorageClass[]
}

export type WaitPhase = 'creating' | 'binding-volume' | 'scheduling' | 'pulling-image' | 'initialising-store' | 'starting' | 'ready'

export const PHASE_TEXT: Record<WaitPhase, string> = {
  creating: 'creating the pod',
  'binding-volume': 'binding the store volume',
  scheduling: 'scheduling',
  'pulling-image': 'pulling the image',
  'initialising-store': 'initialising the Nix store',
  starting: 'starting containers',
  ready: 'ready',
}

export interface Diagnosis {
  /** One line: what is wrong. */
  message: string
  /** What to do about it. */
  hint?: string
  /** True when waiting cannot fix it: stop now instead of at the timeout. */
  fatal: boolean
  /** Give up only when the same problem lasted this long (the scheduler may free room). */
  settleSeconds?: number
  /** A container whose last log lines explain the failure. */
  logsOf?: { container: string; previous: boolean }
}

const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class'

/** Dates from list calls are Date objects; from a Watch they are still strings. */
export function timeOf(value: Date | string | undefined | null): number {
  if (!value) return 0
  const ms = value instanceof Date ? value.getTime() : Date.parse(value)
  return Number.isNaN(ms) ? 0 : ms
}

export function eventTime(event: CoreV1Event): number {
  return timeOf(event.lastTimestamp) || timeOf(event.eventTime as Date | string | undefined) || timeOf(event.firstTimestamp) || timeOf(event.metadata?.creationTimestamp)
}

/** Events of this very object: a re-created pod has the same name but a new uid. */
export function eventsFor(events: CoreV1Event[], kind: string, uid: string | undefined): CoreV1Event[] {
  return events
    .filter((e) => e.involvedObject?.kind === kind && (!uid || !e.involvedObject.uid || e.involvedObject.uid === uid))
    .sort((a, b) => eventTime(a) - eventTime(b))
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
}

function condition(pod: V1Pod, type: string) {
  return pod.status?.conditions?.find((c) => c.type === type)
}

/** The image a `Pulling image "x"` / `Successfully pulled image "x"` event names. */
function imageInEvent(message: string | undefined): string | undefined {
  return /image "([^"]+)"/.exec(message ?? '')?.[1]
}

/** Images the kubelet started pulling and has not finished. */
function imagesBeingPulled(podEvents: CoreV1Event[]): string[] {
  const pulling = new Map<string, number>()
  for (const event of podEvents) {
    const image = imageInEvent(event.message)
    if (!image) continue
    if (event.reason === 'Pulling') pulling.set(image, eventTime(event))
    else if (event.reason === 'Pulled' || event.reason === 'Failed' || event.reason === 'BackOff') pulling.delete(image)
  }
  return [...pulling.keys()]
}

/** Where the pod is on its way to Ready, with a detail worth showing (image, message). */
export function currentPhase(snapshot: PodSnapshot): { phase: WaitPhase; detail?: string } {
  const { pod, pvc } = snapshot
  if (!pod) return { phase: 'creating' }
  if (isReady(pod)) return { phase: 'ready' }
  const scheduled = condition(pod, 'PodScheduled')
  if (scheduled?.status !== 'True') {
    if (pvc?.status?.phase === 'Pending' && !scheduledIgnoringVolume(scheduled?.message)) {
      return { phase: 'binding-volume', detail: latestPvcEvent(snapshot)?.message }
    }
    return { phase: 'scheduling', detail: scheduled?.message }
  }
  const podEvents = eventsFor(snapshot.events, 'Pod', pod.metadata?.uid)
  const pulling = imagesBeingPulled(podEvents)
  if (pulling.length > 0) return { phase: 'pulling-image', detail: pulling.join(', ') }
  const init = pod.status?.initContainerStatuses?.find((c) => c.name === INIT_CONTAINER)
  const initDone = init?.state?.terminated?.exitCode === 0 || pod.status?.phase === 'Running'
  if (!initDone && (pod.spec?.initContainers?.length ?? 0) > 0) return { phase: 'initialising-store' }
  return { phase: 'starting' }
}

/** The scheduler's message names something other than the volume (arch, cpu...). */
function scheduledIgnoringVolume(message: string | undefined): boolean {
  if (!message) return false
  return !/PersistentVolumeClaim|persistentvolumeclaim|volume/i.test(message) && /node/.test(message)
}

function latestPvcEvent(snapshot: PodSnapshot): CoreV1Event | undefined {
  const events = eventsFor(snapshot.events, 'PersistentVolumeClaim', snapshot.pvc?.metadata?.uid)
  return events[events.length - 1]
}

function allStatuses(pod: V1Pod): { status: V1ContainerStatus; init: boolean }[] {
  return [
    ...(pod.status?.initContainerStatuses ?? []).map((status) => ({ status, init: true })),
    ...(pod.status?.containerStatuses ?? []).map((status) => ({ status, init: false })),
  ]
}

function imageOf(pod: V1Pod, container: string): string | undefined {
  return [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].find((c) => c.name === container)?.image
}

function firstLine(text: string | undefined): string {
  return (text ?? '').trim().split('\n')[0] ?? ''
}

/** A stopped pod: the idle monitor's clean exit, or a failure. */
function diagnoseFinished(pod: V1Pod): Diagnosis | undefined {
  const phase = pod.status?.phase
  if (phase !== 'Succeeded' && phase !== 'Failed') return undefined
  const stopped = stoppedPod(pod)
  if (stopped) {
    const idle = stopped.idle
    return {
      message: idle ? `the pod stopped itself (${idle})` : 'the pod exited',
      hint: idle
        ? 'Run setup again to start it. To keep it longer, use --idle-timeout (e.g. 4h, or 0 for never).'
        : 'Run setup again to start a new pod.',
      fatal: true,
    }
  }
  const terminated = (pod.status?.containerStatuses ?? []).map((c) => c.state?.terminated).filter((t) => t !== undefined)
  const failed = terminated.find((t) => t.exitCode !== 0)
  const name = (pod.status?.containerStatuses ?? []).find((c) => c.state?.terminated === failed)?.name
  return {
    message: `the pod failed${pod.status?.reason ? ` (${pod.status.reason}${pod.status.message ? `: ${pod.status.message}` : ''})` : ''}${failed ? `; container ${name} exited with ${failed.exitCode}${failed.message ? `: ${firstLine(failed.message)}` : ''}` : ''}`,
    hint: 'Run setup again to replace it; if it fails again, the log lines above say why.',
    fatal: true,
    logsOf: name ? { container: name, previous: false } : undefined,
  }
}

const IMAGE_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'ErrImageNeverPull', 'InvalidImageName'])

function diagnoseContainers(pod: V1Pod): Diagnosis | undefined {
  for (const { status, init } of allStatuses(pod)) {
    const waiting = status.state?.waiting
    const reason = waiting?.reason ?? ''
    const image = imageOf(pod, status.name) ?? status.image
    if (IMAGE_REASONS.has(reason)) {
      const node = pod.spec?.nodeName ? ` on node ${pod.spec.nodeName}` : ''
      if (reason === 'ErrImageNeverPull') {
        return {
          message: `image ${image} is not present${node}, and the pull policy is Never`,
          hint: 'Load the image onto the node, pick another with --image, or let the node pull it with --pull-policy IfNotPresent.',
          fatal: true,
        }
      }
      const why = firstLine(waiting?.message) || reason
      return {
        message: `cannot pull image ${image}${node}: ${why}`,
        hint: /\b(401|403)\b|unauthori[sz]ed|denied|authenticat/i.test(why)
          ? 'The registry refused the credentials: check the docker-registry Secret given with --image-pull-secret (its server, user and password), or create one (README, "Binary caches and images").'
          : 'Check the image reference and that the node can reach its registry; --image picks another image.',
        fatal: true,
      }
    }
    if (reason === 'CreateContainerConfigError' || reason === 'CreateContainerError' || reason === 'RunContainerError') {
      return {
        message: `container ${status.name} cannot start: ${firstLine(waiting?.message) || reason}`,
        fatal: reason === 'CreateContainerConfigError',
      }
    }
    const last = status.lastState?.terminated ?? status.state?.terminated
    const crashed = reason === 'CrashLoopBackOff' || (init && last !== undefined && last.exitCode !== 0)
    if (crashed) {
      const what = init ? `the ${status.name} init container (store initialisation)` : `container ${status.name}`
      const exit = last ? ` exited with ${last.exitCode}${last.reason && last.reason !== 'Error' ? ` (${last.reason})` : ''}` : ' keeps crashing'
      return {
        message: `${what}${exit}${status.restartCount ? ` after ${status.restartCount} restart(s)` : ''}${last?.message ? `: ${firstLine(last.message)}` : ''}`,
        hint: 'The last log lines are above. Fix the image or the scripts, then run setup again.',
        fatal: true,
        logsOf: { container: status.name, previous: status.state?.terminated === undefined && status.lastState?.terminated !== undefined },
      }
    }
  }
  return undefined
}

function defaultStorageClass(classes: V1StorageClass[]): V1StorageClass | undefined {
  return classes.find((c) => c.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true')
}

function diagnoseVolume(snapshot: PodSnapshot): Diagnosis | undefined {
  const { pvc } = snapshot
  if (!pvc || pvc.status?.phase !== 'Pending') return undefined
  const name = pvc.metadata?.name ?? 'the PVC'
  const className = pvc.spec?.storageClassName
  const events = eventsFor(snapshot.events, 'PersistentVolumeClaim', pvc.metadata?.uid)
  const noClassEvent = events.find((e) => e.reason === 'FailedBinding' && /no storage class is set/.test(e.message ?? ''))
  const noDefault = snapshot.storageClasses !== undefined && !className && !defaultStorageClass(snapshot.storageClasses)
  // Without the event a class-less PersistentVolume may still match: only the event is final.
  if (noClassEvent || noDefault) {
    const classes = snapshot.storageClasses?.map((c) => c.metadata?.name).filter(Boolean) ?? []
    return {
      message: `the store volume ${name} cannot bind: it names no StorageClass and the cluster has no default one${noClassEvent ? ' (no PersistentVolume matches either)' : ''}`,
      hint: classes.length
        ? `Pick one with --storage-class (available: ${classes.join(', ')}), after trampoline clean to drop the pending volume.`
        : 'The cluster has no StorageClass: ask for one (or a default one), or create a matching PersistentVolume; then use --storage-class.',
      fatal: noClassEvent !== undefined,
    }
  }
  if (className && snapshot.storageClasses && !snapshot.storageClasses.some((c) => c.metadata?.name === className)) {
    return {
      message: `the store volume ${name} asks for StorageClass "${className}", which does not exist`,
      hint: `Run trampoline clean, then setup with an existing --storage-class (${snapshot.storageClasses.map((c) => c.metadata?.name).join(', ') || 'none exist'}), or none for the default.`,
      fatal: true,
    }
  }
  const failed = [...events].reverse().find((e) => e.reason === 'ProvisioningFailed')
  if (failed) {
    return {
      message: `provisioning the store volume ${name} failed: ${firstLine(failed.message)}`,
      hint: 'The storage provisioner keeps retrying; if it does not recover, pick another --storage-class.',
      fatal: /storageclass[^"]*"[^"]*" not found/i.test(failed.message ?? ''),
    }
  }
  const waiting = [...events].reverse().find((e) => e.reason === 'ExternalProvisioning')
  if (waiting) {
    const provisioner = /provisioner ['"]([^'"]+)['"]/.exec(waiting.message ?? '')?.[1]
    return {
      message: `the store volume ${name} is waiting for ${provisioner ? `provisioner ${provisioner}` : 'its provisioner'} to create a volume`,
      hint: 'If that provisioner is not running in the cluster, nothing will create the volume: pick another --storage-class.',
      fatal: false,
    }
  }
  return undefined
}

/** Turn the scheduler's "0/3 nodes are available: ..." into what to change. */
function diagnoseScheduling(snapshot: PodSnapshot): Diagnosis | undefined {
  const pod = snapshot.pod!
  const scheduled = condition(pod, 'PodScheduled')
  if (scheduled?.status !== 'False' || scheduled.reason !== 'Unschedulable') return undefined
  const message = scheduled.message ?? 'no node fits'
  const podEvents = eventsFor(snapshot.events, 'Pod', pod.metadata?.uid)
  // A cluster autoscaler adding a node will fix it: keep waiting then.
  const scalingUp = podEvents.some((e) => e.reason === 'TriggeredScaleUp')
  const hints: string[] = []
  const arch = pod.spec?.nodeSelector?.['kubernetes.io/arch']
  if (/node affinity\/selector|node\(s\) didn't match/i.test(message)) {
    hints.push(arch ? `No schedulable node has architecture ${arch}: pick another --arch, or leave it out.` : 'No node matches the pod\'s node selector.')
  }
  if (/Insufficient cpu/i.test(message)) hints.push(`Not enough free CPU on any node for ${describeRequests(pod, 'cpu')}: lower --cpu.`)
  if (/Insufficient memory/i.test(message)) hints.push(`Not enough free memory on any node for ${describeRequests(pod, 'memory')}: lower --memory.`)
  if (/untolerated taint/i.test(message)) hints.push('The nodes are tainted (e.g. control-plane only or cordoned): the pod tolerates no taints.')
  if (/volume node affinity conflict/i.test(message)) hints.push('The store volume is bound to a node this pod cannot use (e.g. another architecture): use the old --arch, or trampoline clean to start a new store.')
  if (/unbound (immediate )?PersistentVolumeClaims/i.test(message)) {
    return diagnoseVolume(snapshot) ?? { message: `the store volume is not bound yet (${message})`, fatal: false }
  }
  return {
    message: `the pod cannot be scheduled: ${message}`,
    hint: hints.join(' ') || undefined,
    fatal: !scalingUp,
    // A pod that is just terminating elsewhere may free the room in a moment.
    settleSeconds: 20,
  }
}

/** "700m (nix-daemon 200m, user 500m)": what the scheduler must find room for. */
export function describeRequests(pod: V1Pod, resource: 'cpu' | 'memory'): string {
  const parts = (pod.spec?.containers ?? [])
    .map((c) => ({ name: c.name, value: c.resources?.requests?.[resource] as string | undefined }))
    .filter((p): p is { name: string; value: string } => p.value !== undefined)
  const total = parts.reduce((sum, p) => sum + quantityValue(p.value), 0)
  const shown = resource === 'cpu' ? formatCpu(total) : formatMemory(total)
  return `${shown} of ${resource} (${parts.map((p) => `${p.name} ${p.value}`).join(', ')})`
}

const SUFFIXES: Record<string, number> = {
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
}

/** A Kubernetes quantity as a number (cores, bytes); NaN when it is not one. */
export function quantityValue(text: string): number {
  const match = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/.exec(String(text).trim())
  if (!match) return Number.NaN
  const factor = match[2] ? SUFFIXES[match[2]] : 1
  return factor === undefined ? Number.NaN : Number(match[1]) * factor
}

function formatCpu(cores: number): string {
  return Number.isInteger(cores) ? String(cores) : `${Math.round(cores * 1000)}m`
}

function formatMemory(bytes: number): string {
  return bytes >= 2 ** 30 ? `${+(bytes / 2 ** 30).toFixed(1)}Gi` : `${Math.round(bytes / 2 ** 20)}Mi`
}

/** The first thing that keeps the pod from Ready, or undefined when it is just on its way. */
export function diagnose(snapshot: PodSnapshot): Diagnosis | undefined {
  const { pod } = snapshot
  if (!pod) return undefined
  if (pod.metadata?.deletionTimestamp) {
    return { message: 'the pod is being deleted', hint: 'Another command (down, clean, gc) removed it; run setup again.', fatal: true }
  }
  return diagnoseFinished(pod) ?? diagnoseContainers(pod) ?? diagnoseScheduling(snapshot) ?? diagnoseVolume(snapshot) ?? diagnoseMounts(snapshot)
}

/** Volume mounts that keep failing (missing ConfigMap/Secret, attach errors): never fatal alone. */
function diagnoseMounts(snapshot: PodSnapshot): Diagnosis | undefined {
  const podEvents = eventsFor(snapshot.events, 'Pod', snapshot.pod?.metadata?.uid)
  const failed = [...podEvents].reverse().find((e) => e.reason === 'FailedMount' || e.reason === 'FailedAttachVolume')
  if (!failed) return undefined
  return { message: `mounting volumes keeps failing: ${firstLine(failed.message)}`, fatal: false }
}

/** Said at the overall timeout: where it got stuck, and the most telling recent warning. */
export function describeTimeout(snapshot: PodSnapshot, seconds: number): Diagnosis {
  const { phase, detail } = currentPhase(snapshot)
  const known = diagnose(snapshot)
  if (known) return { ...known, message: `not ready after ${seconds}s: ${known.message}`, fatal: true }
  const warnings = [...eventsFor(snapshot.events, 'Pod', snapshot.pod?.metadata?.uid), ...eventsFor(snapshot.events, 'PersistentVolumeClaim', snapshot.pvc?.metadata?.uid)]
    .filter((e) => e.type === 'Warning')
    .sort((a, b) => eventTime(a) - eventTime(b))
  const last = warnings[warnings.length - 1]
  // A container that runs but never gets ready usually says why in its log.
  const stuck = (snapshot.pod?.status?.containerStatuses ?? []).find((c) => c.state?.running && !c.ready)
  return {
    logsOf: stuck ? { container: stuck.name, previous: false } : undefined,
    message: `not ready after ${seconds}s, still ${PHASE_TEXT[phase]}${detail ? ` (${firstLine(detail)})` : ''}${last ? `; last warning: ${last.reason}: ${firstLine(last.message)}` : ''}`,
    hint: phase === 'pulling-image' ? 'Big images take a while the first time: retry with a longer --timeout.' : 'Retry with a longer --timeout, or look at the pod\'s events.',
    fatal: true,
  }
}
