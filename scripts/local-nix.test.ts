import { describe, expect, it } from 'vitest'
import { nixCopyFromArgs, parseNixString, podStoreUrl } from './local-nix.ts'
import { parseMaintenanceReport } from './commands/maintenance.ts'

describe('nix copy arguments', () => {
  it('pulls from the pod with the signature arguments it is given', () => {
    const args = nixCopyFromArgs('ssh-ng://trampoline-x', ['/nix/store/a-b'], ['--option', 'extra-trusted-public-keys', 'k:AAAA'])
    expect(args.slice(args.indexOf('copy'))).toEqual(['copy', '--option', 'extra-trusted-public-keys', 'k:AAAA', '--from', 'ssh-ng://trampoline-x', '/nix/store/a-b'])
    expect(nixCopyFromArgs('ssh-ng://trampoline-x', ['/nix/store/a-b'], [])).not.toContain('--no-check-sigs')
  })

  it('names the pod store by its ssh alias', () => {
    expect(podStoreUrl({ alias: 'trampoline-x' })).toBe('ssh-ng://trampoline-x')
    expect(podStoreUrl({ alias: 'trampoline-x' }, 'ssh')).toBe('ssh://trampoline-x')
  })
})

describe('parseNixString (nix-instantiate --eval of builtins.currentSystem)', () => {
  it('reads a quoted system name', () => {
    expect(parseNixString('"x86_64-linux"\n')).toBe('x86_64-linux')
    expect(parseNixString('"aarch64-darwin"')).toBe('aarch64-darwin')
  })

  it('rejects anything else', () => {
    for (const text of ['', 'x86_64-linux', '"a b"', '42', '"x/../y"']) expect(parseNixString(text)).toBeUndefined()
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
