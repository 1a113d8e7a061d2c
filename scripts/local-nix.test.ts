import { describe, expect, it } from 'vitest'
import { nixCopyArgs, podStoreUrl } from './local-nix.ts'
import { parseMaintenanceReport } from './commands/maintenance.ts'

describe('nix copy arguments', () => {
  it('pushes to the pod without disabling signature checks', () => {
    const args = nixCopyArgs('to', 'ssh-ng://trampoline-x', ['/nix/store/a-b'])
    expect(args).toContain('--to')
    expect(args).not.toContain('--no-check-sigs')
    expect(args.at(-1)).toBe('/nix/store/a-b')
  })

  it('pulls from the pod trusting its unsigned paths', () => {
    const args = nixCopyArgs('from', 'ssh-ng://trampoline-x', ['/nix/store/a-b'])
    expect(args.slice(args.indexOf('copy'))).toEqual(['copy', '--no-check-sigs', '--from', 'ssh-ng://trampoline-x', '/nix/store/a-b'])
  })

  it('names the pod store by its ssh alias', () => {
    expect(podStoreUrl({ alias: 'trampoline-x' })).toBe('ssh-ng://trampoline-x')
    expect(podStoreUrl({ alias: 'trampoline-x' }, 'ssh')).toBe('ssh://trampoline-x')
  })
})

describe('maintenance report', () => {
  it('reads the last JSON line', () => {
    expect(parseMaintenanceReport('deleting...\n{"before":100,"after":40,"freed":60}\n')).toEqual({ before: 100, after: 40, freed: 60 })
  })

  it('rejects a missing or partial report', () => {
    expect(() => parseMaintenanceReport('')).toThrow(/no report/)
    expect(() => parseMaintenanceReport('{"before":1}')).toThrow(/incomplete/)
  })
})
