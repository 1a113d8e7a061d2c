import { describe, expect, it } from 'vitest'
import { UserError } from '../errors.ts'
import { formatSessions, parseSessions, pickSession, TMUX_ROOT } from './sessions.ts'

const LISTED = '[{"id":"bbbbbbbb","started":1796000600,"attached":0,"command":"claude --continue"},{"id":"aaaaaaaa","started":1796000000,"attached":2,"command":"claude -p \\"x y\\""}]\n'

describe('parseSessions', () => {
  it('reads the wrapper\'s list, oldest first, with ISO times and attached as a flag', () => {
    expect(parseSessions(LISTED)).toEqual([
      { id: 'aaaaaaaa', started: '2026-11-30T00:53:20.000Z', attached: true, clients: 2, command: 'claude -p "x y"' },
      { id: 'bbbbbbbb', started: '2026-11-30T01:03:20.000Z', attached: false, clients: 0, command: 'claude --continue' },
    ])
  })

  it('reads an empty list', () => {
    expect(parseSessions('[]\n')).toEqual([])
  })

  it('refuses what it does not understand', () => {
    expect(() => parseSessions('{}')).toThrow(/not a JSON array/)
    expect(() => parseSessions('[{"id":1}]')).toThrow(/unexpected entry/)
    expect(() => parseSessions('usage: ...')).toThrow()
  })
})

describe('formatSessions', () => {
  it('shows id, age, attached and the command', () => {
    const text = formatSessions(parseSessions(LISTED), Date.parse('2026-11-30T01:13:20Z'))
    expect(text.split('\n')).toEqual([
      'ID        STARTED  ATTACHED  COMMAND',
      'aaaaaaaa  20m ago  yes (2)   claude -p "x y"',
      'bbbbbbbb  10m ago  no        claude --continue',
    ])
  })
})

describe('pickSession', () => {
  const sessions = parseSessions(LISTED)

  it('takes the newest without an id, or the one named', () => {
    expect(pickSession(sessions, undefined, 'web').id).toBe('bbbbbbbb')
    expect(pickSession(sessions, 'aaaaaaaa', 'web').id).toBe('aaaaaaaa')
  })

  it('says there are none, naming trampoline sessions', () => {
    expect(() => pickSession([], undefined, 'web')).toThrow(/no Claude Code session runs in instance web/)
    try {
      pickSession([], undefined, 'web')
    } catch (error) {
      expect(error).toBeInstanceOf(UserError)
      expect(error).toMatchObject({ exitCode: 5, hint: expect.stringContaining('trampoline sessions --name web') })
    }
  })

  it('names the running ones when the id is unknown', () => {
    expect(() => pickSession(sessions, 'cccccccc', 'web')).toThrow(/no session cccccccc in instance web \(running: aaaaaaaa, bbbbbbbb\)/)
  })
})

it('roots the provisioned tmux under the gcroots directory maintenance keeps', () => {
  expect(TMUX_ROOT).toBe('/nix/var/nix/gcroots/trampoline/agent-tmux')
})
