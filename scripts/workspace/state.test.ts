import { describe, expect, it } from 'vitest'
import { describeChanges, hasPodChanges, parseRawDiff, parseState, podHas } from './state.ts'

const W = 'a'.repeat(40)
const P = 'b'.repeat(40)
const B = 'c'.repeat(40)
const H = 'd'.repeat(40)
const zero = '0'.repeat(40)

function report(fields: Record<string, string>, raw = ''): string {
  const values = { pushed: W, commit: B, base: B, head: B, branch: 'main', worktree: W, commits: '0', ...fields }
  return `${Object.entries(values).map(([key, value]) => `${key} ${value}`).join('\n')}\nchanges\n${raw}`
}

describe('parseState', () => {
  it('reads the key lines and the raw diff records, paths with spaces and newlines intact', () => {
    const raw = `:100644 100644 ${'1'.repeat(40)} ${'2'.repeat(40)} M\0src/a file.ts\0:000000 100755 ${zero} ${'3'.repeat(40)} A\0odd\nname\0:120000 000000 ${'4'.repeat(40)} ${zero} D\0link\0`
    const state = parseState(report({ worktree: P }, raw))
    expect(state).toMatchObject({ pushed: W, commit: B, base: B, head: B, branch: 'main', worktree: P, commits: 0 })
    expect(state.changes.map((c) => [c.status, c.path])).toEqual([['M', 'src/a file.ts'], ['A', 'odd\nname'], ['D', 'link']])
    expect(state.changes[1]).toMatchObject({ beforeMode: '000000', afterMode: '100755', before: zero })
  })

  it('a workspace never pushed: dashes become undefined', () => {
    const state = parseState('pushed -\ncommit -\nbase -\nhead -\nbranch -\nworktree -\ncommits 0\nchanges\n')
    expect(state).toEqual({ pushed: undefined, commit: undefined, base: undefined, head: undefined, branch: undefined, worktree: undefined, commits: 0, changes: [] })
    expect(hasPodChanges(state)).toBe(false)
  })

  it('anything else is an error naming what came', () => {
    expect(() => parseState('push-receive: usage')).toThrow(/unexpected workspace state/)
  })
})

describe('decisions', () => {
  it('changes: a different work tree, commits, or HEAD moved', () => {
    expect(hasPodChanges(parseState(report({})))).toBe(false)
    expect(hasPodChanges(parseState(report({ worktree: P })))).toBe(true)
    expect(hasPodChanges(parseState(report({ head: H, commits: '2' })))).toBe(true)
    expect(hasPodChanges(parseState(report({ head: H })))).toBe(true)
  })

  it('podHas: the same tree and commit, nothing changed there', () => {
    expect(podHas(parseState(report({})), W, B)).toBe(true)
    expect(podHas(parseState(report({})), W, H)).toBe(false)
    expect(podHas(parseState(report({})), P, B)).toBe(false)
    expect(podHas(parseState(report({ worktree: P })), W, B)).toBe(false)
  })

  it('describes changes and commits for a message, bounded', () => {
    const raw = Array.from({ length: 25 }, (_, i) => `:100644 100644 ${'1'.repeat(40)} ${'2'.repeat(40)} M\0f${i}\0`).join('')
    const lines = describeChanges(parseState(report({ worktree: P, head: H, commits: '1' }, raw)), 20)
    expect(lines[0]).toMatch(/^modified\s+f0$/)
    expect(lines).toContain('... and 5 more')
    expect(lines.at(-1)).toMatch(/^1 commit made in the pod \(HEAD dddddddddddd, pushed cccccccccccc\)$/)
    expect(parseRawDiff('')).toEqual([])
  })
})
