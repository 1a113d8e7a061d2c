import { describe, expect, it } from 'vitest'
import { readSshInvocation } from './invocation.ts'

const host = 'trampoline-exec-dev'

describe('readSshInvocation', () => {
  it('reads Nix 2.8: options, then the command as one string', () => {
    expect(readSshInvocation([host, '-x', '-a', 'nix-daemon --stdio'], host)).toEqual({ kind: 'command', command: ['nix-daemon', '--stdio'], announce: false })
    expect(readSshInvocation([host, '-x', '-a', '-i', '/k', 'nix-store --serve --write'], host)).toEqual({
      kind: 'command',
      command: ['nix-store', '--serve', '--write'],
      announce: false,
    })
  })

  it('reads newer Nix: words after --, and the "started" handshake', () => {
    const argv = [host, '-x', '-oPermitLocalCommand=yes', '-oLocalCommand=echo started', '--', 'nix-daemon', '--stdio']
    expect(readSshInvocation(argv, host)).toEqual({ kind: 'command', command: ['nix-daemon', '--stdio'], announce: true })
  })

  it('answers a master check (there is never a master)', () => {
    expect(readSshInvocation(['-O', 'check', host, '-oPermitLocalCommand=yes'], host)).toEqual({ kind: 'master-check' })
    expect(readSshInvocation(['-O', 'exit', host], host).kind).toBe('refused')
  })

  it('refuses another host, a master, and any other command', () => {
    expect(readSshInvocation(['elsewhere', '-x', 'nix-daemon --stdio'], host).kind).toBe('refused')
    expect(readSshInvocation([host, '-M', '-N', '-S', '/s'], host).kind).toBe('refused')
    expect(readSshInvocation([host, '-x', '--', 'sh', '-c', 'id'], host).kind).toBe('refused')
    expect(readSshInvocation([host, '-x', 'nix-daemon --stdio; id'], host).kind).toBe('refused')
    expect(readSshInvocation([host, '-x', '--', 'nix-daemon', '--stdio', '--option', 'x', 'y'], host).kind).toBe('refused')
    expect(readSshInvocation([host], host).kind).toBe('refused')
    expect(readSshInvocation([], host).kind).toBe('refused')
  })
})
