import { describe, expect, it } from 'vitest'
import { ApiException, type V1Node } from '@kubernetes/client-node'
import { archVerdict, cachedSystem, checkArchAvailable, parsePodSystemCache } from './system.ts'
import { ExitCode, UserError } from '../errors.ts'
import type { CommandContext } from '../context.ts'

const node = (arch: string, ready = true): V1Node => ({
  metadata: { name: `n-${arch}`, labels: { 'kubernetes.io/arch': arch } },
  status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
})

describe('the pod system cache', () => {
  it('is used only for the pod it was asked of', () => {
    const state = { read: () => '{"pod":"uid-1","system":"aarch64-linux"}\n' }
    expect(cachedSystem(state, 'uid-1')).toBe('aarch64-linux')
    expect(cachedSystem(state, 'uid-2')).toBeUndefined()
    expect(cachedSystem(state, undefined)).toBeUndefined()
  })

  it('ignores anything unreadable', () => {
    for (const text of [undefined, '', 'x', '{"pod":1,"system":"x"}', '{"pod":"u","system":"a b"}']) expect(parsePodSystemCache(text)).toBeUndefined()
  })
})

describe('setup --arch against the nodes', () => {
  it('passes when a ready node has the arch', () => {
    expect(archVerdict([node('amd64'), node('arm64')], 'arm64')).toEqual({ ok: true })
  })

  it('refuses an arch no node has, naming what the cluster has', () => {
    const verdict = archVerdict([node('amd64'), node('amd64', false)], 'arm64')
    expect(verdict.ok).toBe(false)
    if (verdict.ok) return
    expect(verdict.message).toBe('no node of this cluster has arch arm64 (it has: amd64 (1 of 2 nodes ready))')
    expect(verdict.hint).toMatch(/--arch amd64/)
    expect(verdict.hint).toMatch(/autoscaler/)
  })

  it('lets setup wait when nodes of the arch exist but none is ready', () => {
    const verdict = archVerdict([node('arm64', false), node('amd64')], 'arm64')
    expect(verdict.ok).toBe(true)
    expect(verdict.ok && verdict.note).toMatch(/no arm64 node is ready/)
  })

  const contextWith = (listNode: () => Promise<{ items: V1Node[] }>) =>
    ({ cluster: { core: { listNode }, namespace: 'ns', context: 'c', server: 'https://x' } }) as unknown as Pick<CommandContext, 'cluster'>

  it('fails with exit 6 (the pod could not start) from the node list', async () => {
    const error = (await checkArchAvailable(contextWith(async () => ({ items: [node('amd64')] })), 's390x').catch((e: unknown) => e)) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.exitCode).toBe(ExitCode.podFailed)
    expect(error.message).toMatch(/it has: amd64/)
  })

  it('goes on (as before) when nodes may not be listed', async () => {
    const forbidden = new ApiException(403, 'forbidden', '{"reason":"Forbidden","message":"nodes is forbidden"}', {})
    await expect(checkArchAvailable(contextWith(async () => Promise.reject(forbidden)), 'arm64')).resolves.toBeUndefined()
  })
})
