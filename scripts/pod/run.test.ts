import { describe, expect, it } from 'vitest'
import { UpgradeError } from '../kube/channel.ts'
import { openWithRetry } from './run.ts'

describe('opening an exec', () => {
  it('tries again when the API server answers 5xx, then succeeds', async () => {
    let calls = 0
    const result = await openWithRetry(async () => {
      calls++
      if (calls < 3) throw new UpgradeError(500, '{"message":"error dialing backend"}')
      return 'open'
    }, [1, 1, 1])
    expect(result).toBe('open')
    expect(calls).toBe(3)
  })

  it('gives up after its last attempt with the last error', async () => {
    let calls = 0
    await expect(openWithRetry(async () => {
      calls++
      throw new UpgradeError(503, 'unavailable')
    }, [1, 1])).rejects.toBeInstanceOf(UpgradeError)
    expect(calls).toBe(3)
  })

  it('never retries a refusal (403, 404) or another error', async () => {
    for (const error of [new UpgradeError(403, 'forbidden'), new UpgradeError(404, 'not found'), new Error('ECONNREFUSED')]) {
      let calls = 0
      await expect(openWithRetry(async () => {
        calls++
        throw error
      }, [1, 1])).rejects.toBe(error)
      expect(calls).toBe(1)
    }
  })
})
