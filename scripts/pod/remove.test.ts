import { describe, expect, it } from 'vitest'
import type { LabelledObject } from './objects.ts'
import { cleanPlan } from './remove.ts'

const o = (kind: LabelledObject['kind'], name: string): LabelledObject => ({ kind, name, namespace: 'default', instance: 'web', annotations: {} })
const objects = [
  o('PersistentVolumeClaim', 'trampoline-web'),
  o('Secret', 'trampoline-web-ssh'),
  o('Secret', 'trampoline-web-agent'),
  o('ConfigMap', 'trampoline-web-scripts'),
  o('Pod', 'trampoline-web'),
  o('NetworkPolicy', 'trampoline-web-egress'),
]

describe('cleanPlan', () => {
  it('deletes the pod first and the store last', () => {
    expect(cleanPlan(objects, false).map((x) => x.kind)).toEqual(['Pod', 'NetworkPolicy', 'ConfigMap', 'Secret', 'Secret', 'PersistentVolumeClaim'])
  })

  it('keeps the PVC with --keep-store, but not the keys', () => {
    const kinds = cleanPlan(objects, true).map((x) => x.kind)
    expect(kinds).not.toContain('PersistentVolumeClaim')
    expect(kinds).toContain('Secret')
  })

  it('removes the agent\'s API key Secret too (down keeps it; clean does not)', () => {
    expect(cleanPlan(objects, true).map((x) => x.name)).toContain('trampoline-web-agent')
  })
})
