import type { CoreV1Event, V1ContainerStatus, V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { currentPhase, describeRequests, describeTimeout, diagnose, eventsFor, quantityValue, timeOf, type PodSnapshot } from './diagnose.ts'

// Fixtures shaped like what a 1.33 API server returns for the instance "web".
const POD_UID = '6f1c1f0e-3c1a-4f57-9a53-5d0c7c1f0a01'
const PVC_UID = 'b2d7a9c4-1e0f-4a4e-8d1b-7f3e2c9a6b02'
const IMAGE = 'localhost/trampoline:test'

function pod(status: V1Pod['status'], spec: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'trampoline-web', namespace: 'default', uid: POD_UID, creationTimestamp: new Date('2026-11-22T08:00:00Z') },
    spec: {
      restartPolicy: 'OnFailure',
      initContainers: [{ name: 'store-init', image: IMAGE }],
      containers: [
        { name: 'nix-daemon', image: IMAGE },
        { name: 'user', image: IMAGE },
      ],
      ...spec,
    },
    status,
  }
}

const unscheduled = (message: string): V1Pod =>
  pod(
    { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastTransitionTime: new Date() }] },
    { nodeSelector: { 'kubernetes.io/arch': 'arm64' } },
  )

const scheduledConditions = [
  { type: 'PodReadyToStartContainers', status: 'True' },
  { type: 'Initialized', status: 'True' },
  { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [nix-daemon user]' },
  { type: 'ContainersReady', status: 'False', reason: 'ContainersNotReady' },
  { type: 'PodScheduled', status: 'True' },
]

const initDone: V1ContainerStatus = {
  name: 'store-init',
  image: IMAGE,
  imageID: '',
  ready: true,
  restartCount: 0,
  state: { terminated: { exitCode: 0, reason: 'Completed' } },
}

function running(name: string, ready: boolean): V1ContainerStatus {
  return { name, image: IMAGE, imageID: 'sha256:abc', ready, restartCount: 0, started: true, state: { running: { startedAt: new Date() } } }
}

function waiting(name: string, reason: string, message?: string, extra: Partial<V1ContainerStatus> = {}): V1ContainerStatus {
  return { name, image: IMAGE, imageID: '', ready: false, restartCount: 0, state: { waiting: { reason, message } }, ...extra }
}

function pvc(phase: string, storageClassName?: string): V1PersistentVolumeClaim {
  return {
    metadata: { name: 'trampoline-web', namespace: 'default', uid: PVC_UID },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '20Gi' } }, storageClassName },
    status: { phase },
  }
}

let clock = Date.parse('2026-11-22T08:00:00Z')
function event(kind: 'Pod' | 'PersistentVolumeClaim', reason: string, message: string, type = 'Normal', uid = kind === 'Pod' ? POD_UID : PVC_UID): CoreV1Event {
  clock += 1000
  return {
    metadata: { name: `trampoline-web.${clock.toString(16)}`, namespace: 'default' },
    involvedObject: { kind, name: 'trampoline-web', namespace: 'default', uid },
    reason,
    message,
    type,
    count: 1,
    lastTimestamp: new Date(clock),
  }
}

const standard: V1StorageClass = {
  metadata: { name: 'standard', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
  provisioner: 'kubernetes.io/host-path',
}
const fast: V1StorageClass = { metadata: { name: 'fast' }, provisioner: 'ebs.csi.aws.com' }

describe('currentPhase', () => {
  it('waits for the pod to exist first', () => {
    expect(currentPhase({ events: [] })).toEqual({ phase: 'creating' })
  })

  it('is binding the volume while the PVC is pending and nothing is scheduled', () => {
    const snapshot: PodSnapshot = {
      pod: pod({ phase: 'Pending' }),
      pvc: pvc('Pending', 'fast'),
      events: [event('PersistentVolumeClaim', 'ExternalProvisioning', "Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com' or manually by the system administrator.")],
    }
    expect(currentPhase(snapshot).phase).toBe('binding-volume')
  })

  it('is scheduling when the scheduler is the one saying no', () => {
    const snapshot = { pod: unscheduled("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."), pvc: pvc('Pending'), events: [] }
    expect(currentPhase(snapshot)).toEqual({ phase: 'scheduling', detail: "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector." })
  })

  it('is pulling while a Pulling event has no Pulled after it', () => {
    const p = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }], initContainerStatuses: [waiting('store-init', 'PodInitializing')] })
    const pulling = [event('Pod', 'Scheduled', 'Successfully assigned default/trampoline-web to node1'), event('Pod', 'Pulling', 'Pulling image "ghcr.io/acme/trampoline:1.2"')]
    expect(currentPhase({ pod: p, events: pulling })).toEqual({ phase: 'pulling-image', detail: 'ghcr.io/acme/trampoline:1.2' })
    const pulled = [...pulling, event('Pod', 'Pulled', 'Successfully pulled image "ghcr.io/acme/trampoline:1.2" in 12.3s (12.3s including waiting). Image size: 512000000 bytes.')]
    expect(currentPhase({ pod: p, events: pulled }).phase).toBe('initialising-store')
  })

  it('ignores events of an older pod with the same name', () => {
    const p = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }], initContainerStatuses: [waiting('store-init', 'PodInitializing')] })
    const old = event('Pod', 'Pulling', 'Pulling image "x:1"', 'Normal', 'another-uid')
    expect(currentPhase({ pod: p, events: [old] }).phase).toBe('initialising-store')
    expect(eventsFor([old], 'Pod', POD_UID)).toEqual([])
  })

  it('is starting once the store is initialised, and ready with the Ready condition', () => {
    const starting = pod({ phase: 'Running', conditions: scheduledConditions, initContainerStatuses: [initDone], containerStatuses: [running('nix-daemon', true), running('user', false)] })
    expect(currentPhase({ pod: starting, events: [] }).phase).toBe('starting')
    const ready = pod({ ...starting.status, conditions: scheduledConditions.map((c) => (c.type === 'Ready' ? { type: 'Ready', status: 'True' } : c)) })
    expect(currentPhase({ pod: ready, events: [] }).phase).toBe('ready')
  })
})

describe('diagnose', () => {
  it('has nothing to say about a pod on its way', () => {
    const p = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }], initContainerStatuses: [running('store-init', false)] })
    expect(diagnose({ pod: p, pvc: pvc('Bound', 'standard'), events: [] })).toBeUndefined()
  })

  it('names the architecture no node has', () => {
    const d = diagnose({
      pod: unscheduled("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."),
      events: [],
    })!
    expect(d.fatal).toBe(true)
    expect(d.message).toContain("0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector")
    expect(d.hint).toBe('No schedulable node has architecture arm64: pick another --arch, or leave it out.')
  })

  it('says which resource is short', () => {
    const d = diagnose({ pod: unscheduled('0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.'), events: [] })!
    expect(d.hint).toContain('lower --cpu')
    expect(d.hint).toContain('lower --memory')
    expect(d.hint).not.toContain('--arch')
  })

  it('says how much the pod asks for in all', () => {
    const p = unscheduled('0/1 nodes are available: 1 Insufficient cpu.')
    p.spec!.containers[0].resources = { requests: { cpu: '200m', memory: '2Gi' } }
    p.spec!.containers[1].resources = { requests: { cpu: '1', memory: '512Mi' } }
    expect(diagnose({ pod: p, events: [] })!.hint).toBe('Not enough free CPU on any node for 1200m of cpu (nix-daemon 200m, user 1): lower --cpu.')
    expect(describeRequests(p, 'memory')).toBe('2.5Gi of memory (nix-daemon 2Gi, user 512Mi)')
    expect(quantityValue('1.5')).toBe(1.5)
    expect(quantityValue('8Gi')).toBe(8 * 2 ** 30)
    expect(quantityValue('lots')).toBeNaN()
  })

  it('keeps waiting while a cluster autoscaler adds a node', () => {
    const p = unscheduled('0/1 nodes are available: 1 Insufficient cpu.')
    const d = diagnose({ pod: p, events: [event('Pod', 'TriggeredScaleUp', 'pod triggered scale-up: [{pool-1 1->2 (max: 5)}]')] })!
    expect(d.fatal).toBe(false)
  })

  it('explains a missing image under pull policy Never', () => {
    const p = pod({
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'True' }],
      initContainerStatuses: [waiting('store-init', 'ErrImageNeverPull', `Container image "${IMAGE}" is not present with pull policy of Never`)],
    }, { nodeName: 'node1' })
    const d = diagnose({ pod: p, events: [] })!
    expect(d.fatal).toBe(true)
    expect(d.message).toBe(`image ${IMAGE} is not present on node node1, and the pull policy is Never`)
    expect(d.hint).toContain('--image')
  })

  it('explains an image that cannot be pulled', () => {
    const p = pod({
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'True' }],
      initContainerStatuses: [
        waiting('store-init', 'ImagePullBackOff', 'Back-off pulling image "ghcr.io/acme/trampoline:nope": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "ghcr.io/acme/trampoline:nope": not found'),
      ],
    }, { initContainers: [{ name: 'store-init', image: 'ghcr.io/acme/trampoline:nope' }] })
    const d = diagnose({ pod: p, events: [] })!
    expect(d.message).toMatch(/^cannot pull image ghcr\.io\/acme\/trampoline:nope: Back-off pulling image .*not found$/)
    expect(d.hint).toContain('--image picks another image')
  })

  it('points at the pull secret when the registry refuses the credentials', () => {
    const p = pod({
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'True' }],
      initContainerStatuses: [
        waiting('store-init', 'ErrImagePull', 'failed to pull and unpack image "r.example/t:1": failed to resolve reference "r.example/t:1": pulling from host r.example failed with status code [manifests 1]: 401 Unauthorized'),
      ],
    }, { initContainers: [{ name: 'store-init', image: 'r.example/t:1' }] })
    const d = diagnose({ pod: p, events: [] })!
    expect(d.message).toContain('401 Unauthorized')
    expect(d.hint).toContain('--image-pull-secret')
  })

  it('reports a crash loop with the exit code and asks for the previous logs', () => {
    const p = pod({
      phase: 'Running',
      conditions: scheduledConditions,
      initContainerStatuses: [initDone],
      containerStatuses: [
        running('nix-daemon', true),
        waiting('user', 'CrashLoopBackOff', `back-off 20s restarting failed container=user pod=trampoline-web_default(${POD_UID})`, {
          restartCount: 3,
          lastState: { terminated: { exitCode: 1, reason: 'Error', message: 'missing /etc/trampoline/ssh/authorized_keys: the Secret must hold it\n' } },
        }),
      ],
    })
    const d = diagnose({ pod: p, events: [] })!
    expect(d.fatal).toBe(true)
    expect(d.message).toBe('container user exited with 1 after 3 restart(s): missing /etc/trampoline/ssh/authorized_keys: the Secret must hold it')
    expect(d.logsOf).toEqual({ container: 'user', previous: true })
  })

  it('reports a failed store initialisation at the first failure', () => {
    const p = pod({
      phase: 'Pending',
      conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized' }],
      initContainerStatuses: [{ name: 'store-init', image: IMAGE, imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 2, reason: 'Error' } } }],
    })
    const d = diagnose({ pod: p, events: [] })!
    expect(d.message).toBe('the store-init init container (store initialisation) exited with 2')
    expect(d.logsOf).toEqual({ container: 'store-init', previous: false })
  })

  it('recognises an idle shutdown', () => {
    const p = pod({
      phase: 'Succeeded',
      containerStatuses: [
        { name: 'nix-daemon', image: IMAGE, imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed', message: 'idle: no sessions, builds or pushes for 30m\n' } } },
        { name: 'user', image: IMAGE, imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed', message: 'idle: no sessions, builds or pushes for 30m\n' } } },
      ],
    })
    const d = diagnose({ pod: p, events: [] })!
    expect(d.message).toBe('the pod stopped itself (idle: no sessions, builds or pushes for 30m)')
    expect(d.hint).toContain('--idle-timeout')
  })

  it('reports an evicted pod', () => {
    const p = pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage.' })
    expect(diagnose({ pod: p, events: [] })!.message).toBe('the pod failed (Evicted: The node was low on resource: ephemeral-storage.)')
  })

  it('says there is no StorageClass when the PVC names none and none is default', () => {
    const p = unscheduled('0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.')
    const events = [event('PersistentVolumeClaim', 'FailedBinding', 'no persistent volumes available for this claim and no storage class is set', 'Warning')]
    const d = diagnose({ pod: p, pvc: pvc('Pending'), events, storageClasses: [fast] })!
    expect(d.fatal).toBe(true)
    expect(d.message).toContain('names no StorageClass and the cluster has no default one')
    expect(d.hint).toContain('--storage-class (available: fast)')
  })

  it('waits when no class is set but a plain PersistentVolume may still bind', () => {
    const d = diagnose({ pod: pod({ phase: 'Pending' }), pvc: pvc('Pending'), events: [], storageClasses: [] })!
    expect(d.fatal).toBe(false)
    expect(d.hint).toContain('The cluster has no StorageClass')
  })

  it('says the requested StorageClass does not exist', () => {
    const d = diagnose({ pod: pod({ phase: 'Pending' }), pvc: pvc('Pending', 'gold'), events: [], storageClasses: [standard, fast] })!
    expect(d.fatal).toBe(true)
    expect(d.message).toContain('asks for StorageClass "gold", which does not exist')
    expect(d.hint).toContain('standard, fast')
  })

  it('suspects a missing provisioner when the claim only waits for one', () => {
    const events = [event('PersistentVolumeClaim', 'ExternalProvisioning', "Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.")]
    const d = diagnose({ pod: pod({ phase: 'Pending' }), pvc: pvc('Pending', 'fast'), events, storageClasses: [standard, fast] })!
    expect(d.fatal).toBe(false)
    expect(d.message).toBe('the store volume trampoline-web is waiting for provisioner ebs.csi.aws.com to create a volume')
    expect(d.hint).toContain('--storage-class')
  })

  it('stops at a deleted StorageClass reported by the provisioner', () => {
    const events = [event('PersistentVolumeClaim', 'ProvisioningFailed', 'storageclass.storage.k8s.io "fast" not found', 'Warning')]
    const d = diagnose({ pod: pod({ phase: 'Pending' }), pvc: pvc('Pending', 'fast'), events })!
    expect(d.fatal).toBe(true)
    expect(d.message).toBe('provisioning the store volume trampoline-web failed: storageclass.storage.k8s.io "fast" not found')
  })

  it('mentions mount failures without giving up on them', () => {
    const p = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }], initContainerStatuses: [waiting('store-init', 'PodInitializing')] })
    const events = [event('Pod', 'FailedMount', 'MountVolume.SetUp failed for volume "scripts" : configmap "trampoline-web-scripts" not found', 'Warning')]
    const d = diagnose({ pod: p, pvc: pvc('Bound', 'standard'), events })!
    expect(d.fatal).toBe(false)
    expect(d.message).toContain('configmap "trampoline-web-scripts" not found')
  })
})

describe('describeTimeout', () => {
  it('says where it got stuck and the last warning', () => {
    const p = pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }], initContainerStatuses: [running('store-init', false)] })
    const events = [event('Pod', 'BackOff', 'Back-off restarting failed container', 'Warning'), event('Pod', 'Started', 'Started container store-init')]
    const d = describeTimeout({ pod: p, pvc: pvc('Bound'), events }, 300)
    expect(d.message).toBe('not ready after 300s, still initialising the Nix store; last warning: BackOff: Back-off restarting failed container')
    expect(d.fatal).toBe(true)
    expect(d.logsOf).toBeUndefined()
  })

  it('shows the log of a container that runs but never gets ready', () => {
    const p = pod({ phase: 'Running', conditions: scheduledConditions, initContainerStatuses: [initDone], containerStatuses: [running('nix-daemon', true), running('user', false)] })
    const events = [event('Pod', 'Unhealthy', 'Readiness probe failed: dial tcp 10.213.0.13:2222: connect: connection refused', 'Warning')]
    const d = describeTimeout({ pod: p, pvc: pvc('Bound'), events }, 300)
    expect(d.message).toBe('not ready after 300s, still starting containers; last warning: Unhealthy: Readiness probe failed: dial tcp 10.213.0.13:2222: connect: connection refused')
    expect(d.logsOf).toEqual({ container: 'user', previous: false })
  })

  it('uses a known diagnosis when there is one', () => {
    const d = describeTimeout({ pod: unscheduled('0/1 nodes are available: 1 Insufficient cpu.'), events: [] }, 60)
    expect(d.message).toBe('not ready after 60s: the pod cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu.')
  })
})

describe('timeOf', () => {
  it('reads Dates from list calls and strings from watches', () => {
    expect(timeOf(new Date('2026-11-22T08:00:00Z'))).toBe(Date.parse('2026-11-22T08:00:00Z'))
    expect(timeOf('2026-11-22T08:00:00Z')).toBe(Date.parse('2026-11-22T08:00:00Z'))
    expect(timeOf(undefined)).toBe(0)
    expect(timeOf('garbage')).toBe(0)
  })
})
