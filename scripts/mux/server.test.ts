import { describe, expect, it } from 'vitest'
import type { V1Pod } from '@kubernetes/client-node'
import { spareIdleMs } from './server.ts'

const pod = (value?: string): V1Pod => ({
  spec: { containers: [{ name: 'nix-daemon' }, { name: 'user', env: value === undefined ? [] : [{ name: 'TRAMPOLINE_IDLE_TIMEOUT', value }] }] },
})

describe('spareIdleMs', () => {
  it('keeps a spare 60 s, or a quarter of a shorter pod idle timeout, at least 1 s', () => {
    expect(spareIdleMs(pod())).toBe(60_000)
    expect(spareIdleMs(pod('0'))).toBe(60_000)
    expect(spareIdleMs(pod('7200'))).toBe(60_000)
    expect(spareIdleMs(pod('20'))).toBe(5_000)
    expect(spareIdleMs(pod('2'))).toBe(1_000)
    expect(spareIdleMs(pod('nonsense'))).toBe(60_000)
  })
})
