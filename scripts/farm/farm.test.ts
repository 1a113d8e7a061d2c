import { describe, expect, it } from 'vitest'
import type { V1Pod } from '@kubernetes/client-node'
import { parseNixConfig, resolveFarm, workerReplaceReason, workerSelector } from './farm.ts'
import { DEFAULT_FARM } from '../manifests/worker.ts'

describe('resolveFarm', () => {
  const recorded = { workers: 3, cpu: { request: '2' }, memory: { request: '4Gi' }, arches: ['arm64'] }

  it('is no farm when none was asked for or recorded', () => {
    expect(resolveFarm({}, undefined)).toBeUndefined()
  })
  it('starts from the defaults', () => {
    expect(resolveFarm({ workers: 2 }, undefined)).toEqual({ workers: 2, ...DEFAULT_FARM })
  })
  it('keeps what an earlier setup recorded, option by option', () => {
    expect(resolveFarm({}, recorded)).toEqual(recorded)
    expect(resolveFarm({ workers: 0 }, recorded)).toEqual({ ...recorded, workers: 0 })
    expect(resolveFarm({ cpu: { request: '1' }, arches: ['amd64', 'arm64', 'amd64'] }, recorded)).toEqual({ ...recorded, cpu: { request: '1' }, arches: ['amd64', 'arm64'] })
  })
})

describe('workerReplaceReason', () => {
  const pod = (phase: string, uid: string, hash: string, deleting = false): V1Pod => ({
    metadata: { name: 'w', ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: 'main', uid }], annotations: { 'trampoline.dev/spec-hash': hash }, ...(deleting ? { deletionTimestamp: new Date() } : {}) },
    status: { phase },
  })
  const desired = pod('', 'main-1', 'h1')

  it('keeps a running worker of this pod with the same spec', () => {
    expect(workerReplaceReason(pod('Running', 'main-1', 'h1'), desired)).toBeUndefined()
    expect(workerReplaceReason(pod('Pending', 'main-1', 'h1'), desired)).toBeUndefined()
  })
  it('replaces stopped, failed, foreign, changed or dying workers', () => {
    expect(workerReplaceReason(pod('Succeeded', 'main-1', 'h1'), desired)).toBe('it had stopped')
    expect(workerReplaceReason(pod('Failed', 'main-1', 'h1'), desired)).toBe('it had failed')
    expect(workerReplaceReason(pod('Running', 'main-0', 'h1'), desired)).toBe('it belonged to an earlier pod of the instance')
    expect(workerReplaceReason(pod('Running', 'main-1', 'h0'), desired)).toBe('its settings changed')
    expect(workerReplaceReason(pod('Running', 'main-1', 'h1', true), desired)).toBe('it is being deleted')
  })
})

describe('helpers', () => {
  it('selects the instance\'s workers', () => {
    expect(workerSelector('web')).toBe('app.kubernetes.io/name=trampoline,app.kubernetes.io/instance=web,app.kubernetes.io/component=worker')
  })
  it('reads nix show-config output', () => {
    expect(parseNixConfig('system = x86_64-linux\nsystem-features = benchmark big-parallel kvm\nextra-platforms = \n')).toEqual({
      system: 'x86_64-linux',
      'system-features': 'benchmark big-parallel kvm',
      'extra-platforms': '',
    })
  })
})
