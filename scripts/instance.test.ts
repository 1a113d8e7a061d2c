import { describe, expect, it } from 'vitest'
import {
  APP_SELECTOR,
  defaultInstanceName,
  instanceSelector,
  labelsFor,
  namesFor,
  toDnsLabel,
  toLabelValue,
  validateInstanceName,
} from './instance.ts'

describe('instance names', () => {
  it('derives every object name from the instance as CLAUDE.md says', () => {
    expect(namesFor('web')).toEqual({
      instance: 'web',
      pod: 'trampoline-web',
      pvc: 'trampoline-web',
      sshSecret: 'trampoline-web-ssh',
      agentSecret: 'trampoline-web-agent',
      signingSecret: 'trampoline-web-signing',
      netrcSecret: 'trampoline-web-netrc',
      scripts: 'trampoline-web-scripts',
      networkPolicy: 'trampoline-web-egress',
    })
  })

  it('names the default instance after the repository directory', () => {
    expect(defaultInstanceName('/home/me/src/My_Project.v2')).toBe('my-project-v2')
    expect(defaultInstanceName(undefined)).toBe('default')
  })

  it('turns anything into a DNS label', () => {
    expect(toDnsLabel('--Hello  World--')).toBe('hello-world')
    expect(toDnsLabel('___')).toBe('default')
    const long = toDnsLabel('a'.repeat(39) + '-b')
    expect(long).toBe('a'.repeat(39))
    expect(long.length).toBeLessThanOrEqual(40)
  })

  it('keeps derived names within the 63-character limit', () => {
    const longest = 'a'.repeat(40)
    expect(validateInstanceName(longest)).toBeUndefined()
    for (const name of Object.values(namesFor(longest))) expect(name.length).toBeLessThanOrEqual(63)
  })

  it.each(['', 'A', '-a', 'a-', 'a_b', 'a'.repeat(41), 'a.b'])('rejects %j', (name) => {
    expect(validateInstanceName(name)).toMatch(/must be 1-40/)
  })

  it.each(['a', 'web-2', '0x'])('accepts %j', (name) => {
    expect(validateInstanceName(name)).toBeUndefined()
  })
})

describe('labels', () => {
  it('puts the four contract labels on everything', () => {
    expect(labelsFor('web', 'me.laptop')).toEqual({
      'app.kubernetes.io/name': 'trampoline',
      'app.kubernetes.io/instance': 'web',
      'app.kubernetes.io/managed-by': 'trampoline',
      'trampoline.dev/owner': 'me.laptop',
    })
  })

  it('makes owners valid label values', () => {
    expect(toLabelValue('me@laptop.local')).toBe('me_laptop.local')
    expect(toLabelValue('-x-')).toBe('x')
    expect(toLabelValue('@@@')).toBe('unknown')
    expect(toLabelValue('a'.repeat(80))).toHaveLength(63)
  })

  it('selects one instance within the app', () => {
    expect(APP_SELECTOR).toBe('app.kubernetes.io/name=trampoline')
    expect(instanceSelector('web')).toBe('app.kubernetes.io/name=trampoline,app.kubernetes.io/instance=web')
  })
})
