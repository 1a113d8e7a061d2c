import type { V1Pod } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { ExitCode, UserError } from '../errors.ts'
import { disruptionReason, lostExecError, notReadyReason } from './pods.ts'

const context = { names: { pod: 'trampoline-demo', instance: 'demo' }, cluster: { server: 'https://10.0.0.1:6443' } }

function pod(status: V1Pod['status'], metadata: V1Pod['metadata'] = {}): V1Pod {
  return { metadata: { name: 'trampoline-demo', ...metadata }, status }
}

const running = { phase: 'Running', containerStatuses: [{ name: 'user', ready: true, image: 'i', imageID: '', restartCount: 0 }] }
const evicted = { type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' }

describe('disruptionReason', () => {
  it('names an eviction through the Eviction API with its message', () => {
    expect(disruptionReason(pod({ ...running, conditions: [evicted] }))).toBe('evicted: Eviction API: evicting')
  })

  it('words the other reasons Kubernetes sets, and keeps an unknown one', () => {
    expect(disruptionReason(pod({ conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'PreemptionByScheduler' }] }))).toMatch(/^preempted/)
    expect(disruptionReason(pod({ conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByPodGC' }] }))).toMatch(/node is gone/)
    expect(disruptionReason(pod({ conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'SomethingNew' }] }))).toBe('disrupted (SomethingNew)')
  })

  it('is undefined without a true DisruptionTarget condition', () => {
    expect(disruptionReason(pod(running))).toBeUndefined()
    expect(disruptionReason(pod({ conditions: [{ ...evicted, status: 'False' }] }))).toBeUndefined()
  })
})

describe('notReadyReason', () => {
  it('is undefined for a running pod with a ready user container', () => {
    expect(notReadyReason(pod(running))).toBeUndefined()
  })

  it('says a pod being deleted was evicted when the cluster said so', () => {
    const p = pod({ ...running, conditions: [evicted] }, { deletionTimestamp: new Date() })
    expect(notReadyReason(p)).toBe('it is being deleted (evicted: Eviction API: evicting)')
  })

  it('says a pod being deleted is, without a reason it does not know', () => {
    expect(notReadyReason(pod(running, { deletionTimestamp: new Date() }))).toBe('it is being deleted')
  })

  it('gives a failed pod\'s reason and message (a kubelet eviction)', () => {
    const p = pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: ephemeral-storage. ' })
    expect(notReadyReason(p)).toBe('it failed (Evicted: The node was low on resource: ephemeral-storage.)')
  })
})

describe('lostExecError', () => {
  const message = 'connection lost (1006)'

  it('a pod that is gone: exit 5 and the reason, with setup as the way back', () => {
    const error = lostExecError(context, message, { state: 'gone', reason: 'it is being deleted (evicted: Eviction API: evicting)' })
    expect(error.message).toBe('lost the command in pod trampoline-demo: connection lost (1006); the pod is being deleted (evicted: Eviction API: evicting)')
    expect(error.exitCode).toBe(ExitCode.notFound)
    expect(error.hint).toContain('trampoline setup --name demo')
  })

  it('a cluster that does not answer: the connection to the cluster was lost, exit 3, not "deleted"', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6443'), { code: 'ECONNREFUSED' })
    const read = new UserError('cannot reach the cluster', { exitCode: ExitCode.cluster, cause: new TypeError('fetch failed', { cause: refused }) })
    const error = lostExecError(context, message, { state: 'unreachable', error: read })
    expect(error.message).toBe('lost the connection to the cluster at https://10.0.0.1:6443 during the command in pod trampoline-demo (connection lost (1006)); it does not answer now (ECONNREFUSED)')
    expect(error.exitCode).toBe(ExitCode.cluster)
    expect(error.message).not.toMatch(/deleted/)
  })

  it('a read that fails otherwise is still not a deleted pod', () => {
    const error = lostExecError(context, message, { state: 'unreachable', error: new UserError('forbidden: cannot read pod', { exitCode: ExitCode.forbidden }) })
    expect(error.message).toContain('reading the pod failed: forbidden: cannot read pod')
    expect(error.exitCode).toBe(ExitCode.cluster)
  })

  it('a pod still running: the connection was lost, exit 3', () => {
    const error = lostExecError(context, message, { state: 'ready' }, 'the ssh session')
    expect(error.message).toBe('lost the connection to pod trampoline-demo through the cluster at https://10.0.0.1:6443 during the ssh session (connection lost (1006)); the pod is still running')
    expect(error.exitCode).toBe(ExitCode.cluster)
  })
})
