import type { V1Pod } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { labelsFor, namesFor } from '../instance.ts'
import { buildPod, SPEC_HASH_ANNOTATION, specHash, templateSettings, withSpecHash } from '../manifests/pod.ts'
import { loadTemplate } from '../manifests/template.ts'
import { podAction } from './ensure.ts'

const template = loadTemplate()
const input = { names: namesFor('web'), labels: labelsFor('web', 'me.laptop'), settings: templateSettings(template) }
const desired = withSpecHash(buildPod(template, input))

/** The live pod: what we created, plus what the API server adds. */
function live(pod: V1Pod, status: V1Pod['status']): V1Pod {
  const copy = structuredClone(pod)
  copy.metadata = { ...copy.metadata, uid: 'u-1', resourceVersion: '42', creationTimestamp: new Date() }
  copy.spec!.nodeName = 'node1'
  copy.spec!.containers[0].terminationMessagePath = '/dev/termination-log'
  return { ...copy, status }
}

const running = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }

describe('podAction', () => {
  it('creates when there is no pod', () => {
    expect(podAction(undefined, desired, { hostKeyChanged: false })).toEqual({ action: 'create' })
  })

  it('reuses a running or pending pod with the same spec', () => {
    expect(podAction(live(desired, running), desired, { hostKeyChanged: false })).toEqual({ action: 'reuse' })
    expect(podAction(live(desired, { phase: 'Pending' }), desired, { hostKeyChanged: false })).toEqual({ action: 'reuse' })
  })

  it('replaces a pod that stopped for idleness, and says so', () => {
    const stopped = live(desired, {
      phase: 'Succeeded',
      containerStatuses: [{ name: 'user', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message: 'idle: no activity for 1800s (timeout 1800s)\n' } } }],
    })
    expect(podAction(stopped, desired, { hostKeyChanged: false })).toEqual({ action: 'replace', reason: 'it had stopped (idle: no activity for 1800s (timeout 1800s))' })
    expect(podAction(live(desired, { phase: 'Failed', reason: 'Evicted' }), desired, { hostKeyChanged: false })).toEqual({ action: 'replace', reason: 'it had failed (Evicted)' })
  })

  it('replaces a pod whose settings changed, naming the changes', () => {
    const bigger = withSpecHash(buildPod(template, { ...input, settings: { ...input.settings, cpu: { request: '8', limit: '8' }, arch: 'arm64' } }))
    expect(podAction(live(desired, running), bigger, { hostKeyChanged: false })).toEqual({
      action: 'replace',
      reason: `its settings changed: cpu ${input.settings.cpu.request} (no limit) -> 8, arch any -> arm64`,
    })
  })

  it('replaces a pod made from another template (or by kubectl, without the digest)', () => {
    const byKubectl = live(buildPod(template, input), running)
    expect(podAction(byKubectl, desired, { hostKeyChanged: false })).toEqual({ action: 'replace', reason: 'its spec differs from this version of trampoline' })
  })

  it('replaces a running pod whose host key no longer matches the Secret', () => {
    expect(podAction(live(desired, running), desired, { hostKeyChanged: true }).action).toBe('replace')
  })

  it('waits out a pod that is being deleted', () => {
    const leaving = live(desired, running)
    leaving.metadata!.deletionTimestamp = new Date()
    expect(podAction(leaving, desired, { hostKeyChanged: false })).toEqual({ action: 'replace', reason: 'the previous pod is still being deleted' })
  })
})

describe('spec digest', () => {
  it('is stable across key order and changes with the spec', () => {
    const pod = buildPod(template, input)
    const reverseKeys = (value: unknown): unknown =>
      Array.isArray(value) ? value.map(reverseKeys) : value && typeof value === 'object' ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)])) : value
    const reordered = reverseKeys(pod) as V1Pod
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(pod))
    expect(specHash(reordered)).toBe(specHash(pod))
    const other = buildPod(template, { ...input, settings: { ...input.settings, idleTimeoutSeconds: 60 } })
    expect(specHash(other)).not.toBe(specHash(pod))
    expect(desired.metadata!.annotations![SPEC_HASH_ANNOTATION]).toBe(specHash(pod))
  })
})

describe('podAction with a build farm', () => {
  const withFarm = withSpecHash(buildPod(template, { ...input, farm: true }))

  it('replaces a pod without the farm mounts once the instance has a farm, and keeps it after', () => {
    expect(podAction(live(desired, running), withFarm, { hostKeyChanged: false })).toEqual({
      action: 'replace',
      reason: 'the build farm needs its key and machines file in the nix-daemon container',
    })
    expect(podAction(live(withFarm, running), withFarm, { hostKeyChanged: false })).toEqual({ action: 'reuse' })
  })
})
