import { mkdtempSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ssh2 from 'ssh2'
import { ApiException, type V1Secret } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { generateKeyPair, knownHostsEntry, publicKeyIdentity, publicKeyOf, syncSshKeys, userKeyComment, withAuthorizedKey } from './keys.ts'
import { hostAlias, publicKeyBlob } from './config.ts'
import type { Cluster } from '../kube/client.ts'
import { labelsFor, namesFor } from '../instance.ts'
import { decodeSecretData } from '../manifests/secret.ts'
import { InstanceState } from '../state.ts'

const { utils } = ssh2

describe('generateKeyPair', () => {
  it('makes an OpenSSH ed25519 pair whose halves belong together', () => {
    const pair = generateKeyPair('me@trampoline-web')
    expect(pair.privateKey).toMatch(/^-----BEGIN OPENSSH PRIVATE KEY-----\n/)
    expect(pair.publicKey).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5\S+ me@trampoline-web\n$/)
    const parsed = utils.parseKey(pair.privateKey)
    if (parsed instanceof Error || Array.isArray(parsed)) throw new Error('unreadable private key')
    expect(parsed.getPublicSSH().equals(publicKeyBlob(pair.publicKey))).toBe(true)
  })

  it('makes a different key each time', () => {
    expect(generateKeyPair('a').publicKey).not.toBe(generateKeyPair('a').publicKey)
  })
})

describe('publicKeyOf', () => {
  it('recovers the public line from the private key', () => {
    const pair = generateKeyPair('x')
    expect(publicKeyOf(pair.privateKey, 'x')).toBe(pair.publicKey)
    expect(publicKeyOf(pair.privateKey)).toBe(`${publicKeyIdentity(pair.publicKey)}\n`)
  })

  it('only ever hands out pairs that read back (ssh2 mangles 1 ed25519 key in 256)', () => {
    for (let i = 0; i < 1000; i++) {
      const pair = generateKeyPair('x')
      expect(publicKeyOf(pair.privateKey, 'x')).toBe(pair.publicKey)
    }
  })

  it('is undefined for text that is not a key', () => {
    expect(publicKeyOf('not a key')).toBeUndefined()
  })
})

describe('known_hosts', () => {
  const host = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHyVIBPhQ7j4P5iL269gyhbbULAX7avhcNM/yf8t2lw8 host@trampoline-web\n'

  it('pins the key for the ssh_config alias, without the comment', () => {
    expect(knownHostsEntry(hostAlias('web'), host)).toBe('trampoline-web ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHyVIBPhQ7j4P5iL269gyhbbULAX7avhcNM/yf8t2lw8\n')
  })

  it('refuses something that is not a public key line', () => {
    expect(() => knownHostsEntry('trampoline-web', 'garbage')).toThrow(/not an OpenSSH public key/)
  })
})

describe('authorized_keys', () => {
  const laptop = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA me@laptop'
  const desktop = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB me@desktop'

  it('adds a new key after the existing ones', () => {
    expect(withAuthorizedKey(`${laptop}\n`, desktop)).toBe(`${laptop}\n${desktop}\n`)
  })

  it('does not add a key twice, even with another comment', () => {
    const existing = `${laptop}\n`
    expect(withAuthorizedKey(existing, laptop.replace('me@laptop', 'renamed'))).toBe(existing)
  })

  it('starts from nothing and drops blank and comment lines', () => {
    expect(withAuthorizedKey('', laptop)).toBe(`${laptop}\n`)
    expect(withAuthorizedKey(`# keys\n\n${laptop}\n\n`, desktop)).toBe(`${laptop}\n${desktop}\n`)
  })

  it('names the owner in the key comment', () => {
    expect(userKeyComment('me.laptop', 'web')).toBe('me.laptop@trampoline-web')
  })
})

describe('syncSshKeys (against an in-memory Secret API)', () => {
  function fakeCluster() {
    const secrets = new Map<string, V1Secret>()
    let version = 0
    const notFound = () => new ApiException(404, 'not found', JSON.stringify({ reason: 'NotFound', message: 'secrets not found' }), {})
    const core = {
      readNamespacedSecret: async ({ name }: { name: string }) => {
        const found = secrets.get(name)
        if (!found) throw notFound()
        return structuredClone(found)
      },
      createNamespacedSecret: async ({ body }: { body: V1Secret }) => {
        if (secrets.has(body.metadata!.name!)) throw new ApiException(409, 'exists', '{"reason":"AlreadyExists"}', {})
        const stored = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++version) } }
        secrets.set(body.metadata!.name!, stored)
        return structuredClone(stored)
      },
      replaceNamespacedSecret: async ({ name, body }: { name: string; body: V1Secret }) => {
        const current = secrets.get(name)
        if (!current) throw notFound()
        if (body.metadata?.resourceVersion !== current.metadata?.resourceVersion) throw new ApiException(409, 'conflict', '{"reason":"Conflict"}', {})
        const stored = { ...structuredClone(body), metadata: { ...body.metadata, resourceVersion: String(++version) } }
        secrets.set(name, stored)
        return structuredClone(stored)
      },
    }
    const cluster = { core, namespace: 'default', context: 'test', server: 'https://test' } as unknown as Cluster
    return { cluster, secrets }
  }

  function laptop(cluster: Cluster, owner: string) {
    const state = new InstanceState(mkdtempSync(join(tmpdir(), 'state-')))
    return { cluster, names: namesFor('web'), labels: labelsFor('web', owner), owner, state }
  }

  const authorized = (secrets: Map<string, V1Secret>) => decodeSecretData(secrets.get('trampoline-web-ssh')!).authorized_keys.trim().split('\n')

  it('creates the Secret and pins its host key on first setup', async () => {
    const { cluster, secrets } = fakeCluster()
    const me = laptop(cluster, 'me.laptop')
    const identity = await syncSshKeys(me, 'trampoline-web')
    expect(identity.secretCreated).toBe(true)
    expect(identity.keyAdded).toBe(false)
    const secret = decodeSecretData(secrets.get('trampoline-web-ssh')!)
    expect(publicKeyOf(secret.ssh_host_ed25519_key)).toBe(`${publicKeyIdentity(secret['ssh_host_ed25519_key.pub'])}\n`)
    expect(me.state.read('known_hosts')).toBe(knownHostsEntry('trampoline-web', secret['ssh_host_ed25519_key.pub']))
    expect(me.state.read('host_ed25519.pub')).toBe(`${publicKeyIdentity(secret['ssh_host_ed25519_key.pub'])}\n`)
    expect(authorized(secrets)).toEqual([me.state.read('id_ed25519.pub')!.trim()])
    expect(statSync(me.state.path('id_ed25519')).mode & 0o777).toBe(0o600)
  })

  it('changes nothing on a second run', async () => {
    const { cluster, secrets } = fakeCluster()
    const me = laptop(cluster, 'me.laptop')
    await syncSshKeys(me, 'trampoline-web')
    const before = structuredClone(secrets.get('trampoline-web-ssh'))
    const key = me.state.read('id_ed25519')
    const again = await syncSshKeys(me, 'trampoline-web')
    expect(again.changes).toEqual([])
    expect(secrets.get('trampoline-web-ssh')).toEqual(before)
    expect(me.state.read('id_ed25519')).toBe(key)
  })

  it('gives another laptop its own key and the same pinned host key', async () => {
    const { cluster, secrets } = fakeCluster()
    const me = laptop(cluster, 'me.laptop')
    const first = await syncSshKeys(me, 'trampoline-web')
    const other = laptop(cluster, 'me.desktop')
    const second = await syncSshKeys(other, 'trampoline-web')
    expect(second.secretCreated).toBe(false)
    expect(second.keyAdded).toBe(true)
    expect(second.hostPublicKey).toBe(first.hostPublicKey)
    expect(other.state.read('known_hosts')).toBe(me.state.read('known_hosts'))
    expect(authorized(secrets)).toEqual([me.state.read('id_ed25519.pub')!.trim(), other.state.read('id_ed25519.pub')!.trim()])
    expect(second.authorizedKeys.trim().split('\n')).toHaveLength(2)
  })

  it('re-pins from the API when the instance was re-created', async () => {
    const { cluster, secrets } = fakeCluster()
    const me = laptop(cluster, 'me.laptop')
    const first = await syncSshKeys(me, 'trampoline-web')
    secrets.clear()
    const second = await syncSshKeys(me, 'trampoline-web')
    expect(second.hostPublicKey).not.toBe(first.hostPublicKey)
    expect(second.changes.some((c) => c.includes('changed in the cluster'))).toBe(true)
    expect(me.state.read('known_hosts')).toBe(knownHostsEntry('trampoline-web', second.hostPublicKey))
  })

  it('derives the host public key when a hand-made Secret lacks it', async () => {
    const { cluster, secrets } = fakeCluster()
    const host = generateKeyPair('host')
    secrets.set('trampoline-web-ssh', { metadata: { name: 'trampoline-web-ssh', resourceVersion: '1' }, data: { ssh_host_ed25519_key: Buffer.from(host.privateKey).toString('base64') } })
    const me = laptop(cluster, 'me.laptop')
    const identity = await syncSshKeys(me, 'trampoline-web')
    expect(publicKeyIdentity(identity.hostPublicKey)).toBe(publicKeyIdentity(host.publicKey))
    expect(authorized(secrets)).toHaveLength(1)
  })
})
