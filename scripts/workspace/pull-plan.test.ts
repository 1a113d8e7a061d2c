import { describe, expect, it } from 'vitest'
import { commitsTarget, parseLsTree, planPull } from './pull-plan.ts'
import type { PodChange } from './state.ts'

const zero = '0'.repeat(40)
const id = (c: string) => c.repeat(40)
const change = (path: string, status: string, before: string, after: string, beforeMode = '100644', afterMode = '100644'): PodChange =>
  ({ path, status, before, after, beforeMode: before === zero ? '000000' : beforeMode, afterMode: after === zero ? '000000' : afterMode })

describe('planPull', () => {
  const local = parseLsTree([
    `100644 blob ${id('1')}\tsame-as-pushed.txt`,
    `100644 blob ${id('9')}\tedited-locally.txt`,
    `100644 blob ${id('2')}\talready-pulled.txt`,
    `100755 blob ${id('3')}\tmode-changed.sh`,
    `100644 blob ${id('4')}\tnew-here-too.txt`,
    `100644 blob ${id('5')}\tdeleted-in-pod.txt`,
  ].join('\0') + '\0')

  it('applies where local is as pushed, skips what is already there, reports the rest', () => {
    const plan = planPull([
      change('same-as-pushed.txt', 'M', id('1'), id('2')),
      change('edited-locally.txt', 'M', id('1'), id('2')),
      change('already-pulled.txt', 'M', id('1'), id('2')),
      change('mode-changed.sh', 'M', id('3'), id('6')),
      change('new-in-pod.txt', 'A', zero, id('7')),
      change('new-here-too.txt', 'A', zero, id('8')),
      change('deleted-in-pod.txt', 'D', id('5'), zero),
      change('deleted-both.txt', 'D', id('5'), zero),
    ], local)
    expect(plan.apply.map((c) => c.path)).toEqual(['same-as-pushed.txt', 'new-in-pod.txt', 'deleted-in-pod.txt'])
    expect(plan.same.map((c) => c.path)).toEqual(['already-pulled.txt', 'deleted-both.txt'])
    expect(plan.conflicts.map((c) => c.path)).toEqual(['edited-locally.txt', 'mode-changed.sh', 'new-here-too.txt'])
  })

  it('parses paths with spaces and tabs', () => {
    expect(parseLsTree(`100644 blob ${id('1')}\ta b\tc\0`).get('a b\tc')).toEqual({ mode: '100644', id: id('1') })
  })
})

describe('commitsTarget', () => {
  it('fast-forwards when the local HEAD is still the pushed commit, else a branch per instance', () => {
    expect(commitsTarget(id('a'), id('a'), 'web')).toEqual({ fastForward: true })
    expect(commitsTarget(id('b'), id('a'), 'web')).toEqual({ fastForward: false, branch: 'trampoline/web' })
    expect(commitsTarget(undefined, id('a'), 'web')).toEqual({ fastForward: false, branch: 'trampoline/web' })
  })
})
