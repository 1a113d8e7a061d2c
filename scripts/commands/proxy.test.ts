import { ApiException } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { ExitCode, UserError } from '../errors.ts'
import { UpgradeError } from '../kube/channel.ts'
import { isTransient, retryTransient } from './proxy.ts'

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' })
const unreachable = () => new UserError('cannot reach the cluster', { exitCode: ExitCode.cluster, cause: new TypeError('fetch failed', { cause: refused() }) })

describe('isTransient', () => {
  it('retries a cluster that does not answer or is not ready yet', () => {
    expect(isTransient(unreachable())).toBe(true)
    expect(isTransient(refused())).toBe(true)
    expect(isTransient(new UpgradeError(503, '{"message":"not ready"}'))).toBe(true)
    expect(isTransient(new UserError('refused', { cause: new ApiException(503, 'unavailable', '{}', {}) }))).toBe(true)
  })

  it('does not retry what another try cannot fix', () => {
    expect(isTransient(new UserError('forbidden', { exitCode: ExitCode.forbidden, cause: new ApiException(403, 'forbidden', '{}', {}) }))).toBe(false)
    expect(isTransient(new UserError('no pod', { exitCode: ExitCode.notFound }))).toBe(false)
    expect(isTransient(new UpgradeError(404, 'not found'))).toBe(false)
    expect(isTransient(Object.assign(new Error('bad certificate'), { code: 'CERT_HAS_EXPIRED' }))).toBe(false)
  })
})

describe('retryTransient', () => {
  function clock() {
    let t = 0
    const waits: number[] = []
    return { now: () => t, sleep: async (ms: number) => { waits.push(ms); t += ms }, waits }
  }

  it('tries again until it works, backing off', async () => {
    const c = clock()
    let calls = 0
    const retried: number[] = []
    const result = await retryTransient(async () => {
      if (++calls < 4) throw unreachable()
      return 'open'
    }, { deadlineMs: 30_000, now: c.now, sleep: c.sleep, onRetry: (_e, left) => retried.push(left) })
    expect(result).toBe('open')
    expect(c.waits).toEqual([250, 500, 1000])
    expect(retried).toEqual([30_000, 29_750, 29_250])
  })

  it('gives up at the deadline with the last error', async () => {
    const c = clock()
    let calls = 0
    await expect(retryTransient(async () => {
      calls++
      throw unreachable()
    }, { deadlineMs: 5_000, now: c.now, sleep: c.sleep })).rejects.toThrow('cannot reach the cluster')
    expect(c.waits.reduce((a, b) => a + b, 0)).toBe(5_000)
    expect(calls).toBe(c.waits.length + 1)
  })

  it('fails at once on an error that is not transient', async () => {
    const c = clock()
    await expect(retryTransient(async () => {
      throw new UserError('no pod', { exitCode: ExitCode.notFound })
    }, { deadlineMs: 30_000, now: c.now, sleep: c.sleep })).rejects.toThrow('no pod')
    expect(c.waits).toEqual([])
  })
})
