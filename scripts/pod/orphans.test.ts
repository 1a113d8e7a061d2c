import { describe, expect, it } from 'vitest'
import type { LabelledObject } from './objects.ts'
import { expiresAt, gcPlan } from './orphans.ts'

const now = Date.parse('2026-11-22T12:00:00Z')
const hourAgo = new Date(now - 3600_000)

function object(kind: LabelledObject['kind'], name: string, instance: string, extra: Partial<LabelledObject> = {}): LabelledObject {
  return { kind, name, namespace: 'default', instance, owner: 'me.laptop', created: hourAgo, annotations: {}, ...extra }
}

const instance = (name: string) => [
  object('Pod', `trampoline-${name}`, name, { phase: 'Running' }),
  object('ConfigMap', `trampoline-${name}-scripts`, name),
  object('Secret', `trampoline-${name}-ssh`, name),
  object('Secret', `trampoline-${name}-agent`, name),
  object('PersistentVolumeClaim', `trampoline-${name}`, name),
  object('NetworkPolicy', `trampoline-${name}-egress`, name),
]

const names = (plan: ReturnType<typeof gcPlan>) => plan.map((i) => `${i.object.kind}/${i.object.name}`)

describe('gcPlan', () => {
  it('leaves complete instances alone', () => {
    expect(gcPlan(instance('web'), now, { includeStores: true })).toEqual([])
  })

  it('removes the leftovers of an instance without a pod, keeping its store and keys', () => {
    const objects = instance('gone').filter((o) => o.kind !== 'Pod')
    expect(names(gcPlan(objects, now, { includeStores: false }))).toEqual([
      'ConfigMap/trampoline-gone-scripts',
      'NetworkPolicy/trampoline-gone-egress',
    ])
    const all = names(gcPlan(objects, now, { includeStores: true }))
    expect(all).toContain('PersistentVolumeClaim/trampoline-gone')
    expect(all).toContain('Secret/trampoline-gone-ssh')
    expect(all).toContain('Secret/trampoline-gone-agent')
  })

  it('removes pods past their expiry, and then their leftovers too', () => {
    const objects = instance('agent1')
    objects[0].annotations = { 'trampoline.dev/expires-at': '2026-11-22T11:59:00Z' }
    const plan = gcPlan(objects, now, { includeStores: false })
    expect(names(plan)).toEqual([
      'Pod/trampoline-agent1',
      'ConfigMap/trampoline-agent1-scripts',
      'NetworkPolicy/trampoline-agent1-egress',
    ])
    expect(plan[0].why).toBe('expired at 2026-11-22T11:59:00.000Z')
  })

  it('keeps pods that expire later, or carry an unreadable expiry', () => {
    const later = instance('a')
    later[0].annotations = { 'trampoline.dev/expires-at': '2026-11-22T13:00:00Z' }
    const garbage = instance('b')
    garbage[0].annotations = { 'trampoline.dev/expires-at': 'tomorrow-ish' }
    expect(gcPlan([...later, ...garbage], now, { includeStores: true })).toEqual([])
    expect(expiresAt(garbage[0])).toBeUndefined()
  })

  it('does not race a setup that has not created its pod yet', () => {
    const fresh = object('ConfigMap', 'trampoline-new-scripts', 'new', { created: new Date(now - 30_000) })
    expect(gcPlan([fresh], now, { includeStores: false })).toEqual([])
    expect(gcPlan([fresh], now, { includeStores: false, graceSeconds: 10 })).toHaveLength(1)
  })

  it('matches pods to objects within their own namespace only', () => {
    const elsewhere = object('ConfigMap', 'trampoline-web-scripts', 'web', { namespace: 'other' })
    expect(names(gcPlan([...instance('web'), elsewhere], now, { includeStores: false }))).toEqual(['ConfigMap/trampoline-web-scripts'])
  })
})

describe('gcPlan and the build farm', () => {
  const farm = (name: string) => [
    object('Pod', `trampoline-${name}-worker-0`, name, { phase: 'Running' }),
    object('Secret', `trampoline-${name}-farm`, name),
  ]

  it('keeps workers and the farm Secret of a live instance', () => {
    expect(gcPlan([...instance('web'), ...farm('web')], now, { includeStores: true })).toEqual([])
  })

  it('removes workers of an instance without its pod (a worker keeps no instance alive); the farm Secret is a store', () => {
    const objects = [...instance('gone').filter((o) => o.kind !== 'Pod'), ...farm('gone')]
    expect(names(gcPlan(objects, now, { includeStores: false }))).toContain('Pod/trampoline-gone-worker-0')
    expect(names(gcPlan(objects, now, { includeStores: false }))).not.toContain('Secret/trampoline-gone-farm')
    expect(names(gcPlan(objects, now, { includeStores: true }))).toContain('Secret/trampoline-gone-farm')
  })
})
