import { ApiException, type V1Secret } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import type { Cluster } from '../kube/client.ts'
import { labelsFor, namesFor } from '../instance.ts'
import { decodeSecretData } from '../manifests/secret.ts'
import { keyFingerprint } from './key.ts'
import { syncAgentKey } from './secret.ts'

const KEY = 'sk-ant-api03-first'
const OTHER = 'sk-ant-api03-second'

/** create, read and merge-patch of Secrets, with a record of the writes. */
function fakeCluster(initial?: V1Secret) {
  const secrets = new Map<string, V1Secret>()
  if (initial) secrets.set(initial.metadata!.name!, structuredClone(initial))
  const writes: string[] = []
  const notFound = () => new ApiException(404, 'not found', JSON.stringify({ reason: 'NotFound', message: 'secrets not found' }), {})
  const core = {
    readNamespacedSecret: async ({ name }: { name: string }) => {
      const found = secrets.get(name)
      if (!found) throw notFound()
      return structuredClone(found)
    },
    createNamespacedSecret: async ({ body }: { body: V1Secret }) => {
      if (secrets.has(body.metadata!.name!)) throw new ApiException(409, 'exists', '{"reason":"AlreadyExists"}', {})
      writes.push(`create ${body.metadata!.name}`)
      secrets.set(body.metadata!.name!, structuredClone(body))
      return structuredClone(body)
    },
    patchNamespacedSecret: async ({ name, body }: { name: string; body: V1Secret }) => {
      const current = secrets.get(name)
      if (!current) throw notFound()
      writes.push(`patch ${name}`)
      const merged = {
        ...current,
        metadata: { ...current.metadata, labels: { ...current.metadata?.labels, ...body.metadata?.labels } },
        data: { ...current.data, ...body.data },
      }
      secrets.set(name, merged)
      return structuredClone(merged)
    },
  }
  const cluster = { core, namespace: 'default', context: 'test', server: 'https://test' } as unknown as Cluster
  return { target: { cluster, names: namesFor('web'), labels: labelsFor('web', 'me.laptop') }, secrets, writes }
}

describe('syncAgentKey (against an in-memory Secret API)', () => {
  it('stores a first key in a labelled Secret', async () => {
    const { target, secrets, writes } = fakeCluster()
    expect(await syncAgentKey(target, KEY)).toEqual({ fingerprint: keyFingerprint(KEY), change: 'created' })
    expect(writes).toEqual(['create trampoline-web-agent'])
    const secret = secrets.get('trampoline-web-agent')!
    expect(decodeSecretData(secret)).toEqual({ ANTHROPIC_API_KEY: KEY })
    expect(secret.metadata!.labels).toMatchObject({ 'app.kubernetes.io/instance': 'web', 'app.kubernetes.io/component': 'agent' })
  })

  it('writes nothing when the key is the stored one', async () => {
    const { target, writes } = fakeCluster()
    await syncAgentKey(target, KEY)
    expect(await syncAgentKey(target, KEY)).toEqual({ fingerprint: keyFingerprint(KEY), change: 'unchanged' })
    expect(writes).toEqual(['create trampoline-web-agent'])
  })

  it('replaces only the key when it changed', async () => {
    const { target, secrets, writes } = fakeCluster({
      metadata: { name: 'trampoline-web-agent', labels: { mine: 'yes' } },
      data: { ANTHROPIC_API_KEY: Buffer.from(KEY).toString('base64'), NOTE: Buffer.from('kept').toString('base64') },
    })
    expect(await syncAgentKey(target, OTHER)).toEqual({ fingerprint: keyFingerprint(OTHER), change: 'updated' })
    expect(writes).toEqual(['patch trampoline-web-agent'])
    expect(decodeSecretData(secrets.get('trampoline-web-agent')!)).toEqual({ ANTHROPIC_API_KEY: OTHER, NOTE: 'kept' })
    // A hand-made Secret gets our labels, so that clean finds it.
    expect(secrets.get('trampoline-web-agent')!.metadata!.labels).toMatchObject({ mine: 'yes', 'app.kubernetes.io/name': 'trampoline' })
  })

  it('uses the stored key when this machine has none', async () => {
    const { target, writes } = fakeCluster()
    await syncAgentKey(target, KEY)
    expect(await syncAgentKey(target, undefined)).toEqual({ fingerprint: keyFingerprint(KEY), change: 'unchanged' })
    expect(writes).toHaveLength(1)
  })

  it('says what to do when there is no key anywhere (local precondition)', async () => {
    const { target, writes } = fakeCluster()
    await expect(syncAgentKey(target, undefined)).rejects.toMatchObject({
      exitCode: 7,
      message: expect.stringContaining('no Anthropic API key'),
      hint: expect.stringMatching(/ANTHROPIC_API_KEY.*--api-key-file.*--api-key-helper/),
    })
    expect(writes).toEqual([])
  })

  it('takes over a Secret another session created meanwhile', async () => {
    const { target, secrets, writes } = fakeCluster()
    const core = target.cluster.core as unknown as { readNamespacedSecret: (q: { name: string }) => Promise<V1Secret> }
    const read = core.readNamespacedSecret
    let first = true
    // The first read misses; by the time we create, someone else has.
    core.readNamespacedSecret = async (q) => {
      if (first) {
        first = false
        secrets.set('trampoline-web-agent', { metadata: { name: 'trampoline-web-agent' }, data: { ANTHROPIC_API_KEY: Buffer.from(OTHER).toString('base64') } })
        throw new ApiException(404, 'not found', '{"reason":"NotFound"}', {})
      }
      return read(q)
    }
    expect(await syncAgentKey(target, KEY)).toEqual({ fingerprint: keyFingerprint(KEY), change: 'updated' })
    expect(writes).toEqual(['patch trampoline-web-agent'])
  })
})
