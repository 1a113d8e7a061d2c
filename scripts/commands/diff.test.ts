import { describe, expect, it } from 'vitest'
import { diffFormat, podDiffArgv } from './diff.ts'

const W = 'a'.repeat(40)
const P = 'b'.repeat(40)
const B = 'c'.repeat(40)
const H = 'd'.repeat(40)

describe('diff', () => {
  it('picks one format', () => {
    expect(diffFormat({})).toEqual([])
    expect(diffFormat({ stat: true })).toEqual(['--stat'])
    expect(diffFormat({ 'name-only': true })).toEqual(['--name-only'])
    expect(diffFormat({ 'name-status': true })).toEqual(['--name-status', '--no-renames'])
    expect(diffFormat({ binary: true })).toEqual(['--binary', '--full-index'])
  })

  it('passes the ids as values, lists commits only when the pod has some', () => {
    const plain = podDiffArgv({ pushed: W, worktree: P, base: B, head: B }, ['--stat'], false)
    expect(plain.slice(0, 6)).toEqual(['env', `BASE=${B}`, `HEAD=${B}`, `PUSHED=${W}`, `WORK=${P}`, 'FORMAT=--stat'])
    expect(plain[8]).not.toContain('log')
    expect(plain.slice(-8)).toEqual(['trampoline-diff', 'git', '-C', '/workspace/src', '-c', 'color.ui=never', '-c', 'core.quotePath=false'])
    const commits = podDiffArgv({ pushed: W, worktree: P, base: B, head: H }, [], true)
    expect(commits[8]).toContain('"$BASE..$HEAD"')
    expect(commits).toContain('color.ui=always')
  })
})
