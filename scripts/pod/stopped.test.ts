import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { podAction } from './ensure.ts'
import { phaseOf } from '../commands/status.ts'
import { diagnose } from './diagnose.ts'
import { notReadyReason } from './pods.ts'
import { stoppedPod } from './stopped.ts'

function exited(name: string, message?: string): V1ContainerStatus {
  return { name, image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed', message } } }
}

function pod(status: V1Pod['status']): V1Pod {
  return { metadata: { name: 'trampoline-demo' }, status }
}

const idle = pod({ phase: 'Succeeded', containerStatuses: [exited('nix-daemon'), exited('user', 'idle: no activity for 1800s (timeout 1800s)\n')] })
const otherFirst = pod({ phase: 'Succeeded', containerStatuses: [exited('nix-daemon', 'done\n'), exited('user', ' idle: no sessions\n')] })
const silent = pod({ phase: 'Succeeded', containerStatuses: [exited('nix-daemon'), exited('user')] })
const blank = pod({ phase: 'Succeeded', containerStatuses: [exited('nix-daemon', ' \n')] })
const bare = pod({ phase: 'Succeeded' })

describe('stoppedPod', () => {
  it('reads the idle message and the first message, trimmed', () => {
    expect(stoppedPod(idle)).toEqual({ idle: 'idle: no activity for 1800s (timeout 1800s)', message: 'idle: no activity for 1800s (timeout 1800s)' })
    expect(stoppedPod(otherFirst)).toEqual({ idle: 'idle: no sessions', message: 'done' })
    expect(stoppedPod(silent)).toEqual({ idle: undefined, message: undefined })
    expect(stoppedPod(blank)).toEqual({ idle: undefined, message: '' })
    expect(stoppedPod(bare)).toEqual({ idle: undefined, message: undefined })
  })

  it('is undefined for a pod that did not end Succeeded', () => {
    expect(stoppedPod(pod({ phase: 'Failed', containerStatuses: [exited('user', 'idle: x')] }))).toBeUndefined()
    expect(stoppedPod(pod({ phase: 'Running' }))).toBeUndefined()
    expect(stoppedPod(pod(undefined))).toBeUndefined()
  })
})

// What each reader says about the same stopped pods (the texts they had before sharing it).
describe('the readers of a stopped pod', () => {
  const desired: V1Pod = { metadata: { name: 'trampoline-demo' } }
  it.each([
    ['idle', idle, 'it has stopped (idle: no activity for 1800s (timeout 1800s))', 'Stopped (idle: no activity for 1800s (timeout 1800s))', 'it had stopped (idle: no activity for 1800s (timeout 1800s))', 'the pod stopped itself (idle: no activity for 1800s (timeout 1800s))'],
    ['another message first', otherFirst, 'it has stopped (done)', 'Stopped (idle: no sessions)', 'it had stopped (idle: no sessions)', 'the pod stopped itself (idle: no sessions)'],
    ['no message', silent, 'it has stopped', 'Stopped', 'it had stopped', 'the pod exited'],
    ['a blank message', blank, 'it has stopped ()', 'Stopped', 'it had stopped', 'the pod exited'],
    ['no container statuses', bare, 'it has stopped', 'Stopped', 'it had stopped', 'the pod exited'],
  ])('%s', (_, stopped, notReady, phase, replace, diagnosis) => {
    expect(notReadyReason(stopped)).toBe(notReady)
    expect(phaseOf(stopped)).toBe(phase)
    expect(podAction(stopped, desired, { hostKeyChanged: false })).toEqual({ action: 'replace', reason: replace })
    expect(diagnose({ pod: stopped, events: [] })?.message).toBe(diagnosis)
  })
})
