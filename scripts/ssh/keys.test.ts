import ssh2 from 'ssh2'
import { describe, expect, it } from 'vitest'
import { generateKeyPair, knownHostsEntry, publicKeyIdentity, publicKeyOf, userKeyComment, withAuthorizedKey } from './keys.ts'
import { hostAlias, publicKeyBlob } from './config.ts'

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
