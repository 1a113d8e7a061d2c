import { createPublicKey, createPrivateKey, sign, verify } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { buildSigningSecret, isNixPublicKey, signingKeyName, storedPublicKey, SIGNING_SECRET_KEYS } from '../manifests/signing-secret.ts'
import { namesFor } from '../instance.ts'
import { generateNixKeyPair } from './key.ts'
import { parseLocalSigConfig, planSigCheck, sigCheckArgs, trustKeyLine } from './local-trust.ts'
import { UserError } from '../errors.ts'

/** Rebuild node keys from Nix's format to prove the halves belong together. */
function nodeKeys(secretKey: string, publicKey: string) {
  const secret = Buffer.from(secretKey.split(':')[1], 'base64')
  const pub = Buffer.from(publicKey.split(':')[1], 'base64')
  const b64u = (b: Buffer) => b.toString('base64url')
  return {
    priv: createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64u(secret.subarray(0, 32)), x: b64u(pub) }, format: 'jwk' }),
    pub: createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(pub) }, format: 'jwk' }),
    tail: secret.subarray(32),
    pubRaw: pub,
  }
}

describe('Nix signing keys', () => {
  it('makes a key pair in Nix\'s format whose halves match', () => {
    const keys = generateNixKeyPair('trampoline-ns-x-1')
    expect(keys.secretKey).toMatch(/^trampoline-ns-x-1:[A-Za-z0-9+/]{86}==$/)
    expect(isNixPublicKey(keys.publicKey)).toBe(true)
    const { priv, pub, tail, pubRaw } = nodeKeys(keys.secretKey, keys.publicKey)
    // Nix's 64-byte secret is seed + public key.
    expect(tail.equals(pubRaw)).toBe(true)
    const signature = sign(null, Buffer.from('narinfo'), priv)
    expect(verify(null, Buffer.from('narinfo'), pub, signature)).toBe(true)
  })

  it('names keys by namespace and instance', () => {
    expect(signingKeyName('team', 'api')).toBe('trampoline-team-api-1')
  })

  it('builds a labelled Secret holding both halves, and reads the public one back', () => {
    const keys = generateNixKeyPair('k-1')
    const secret = buildSigningSecret({ names: namesFor('api'), labels: { a: 'b' }, keys })
    expect(secret.metadata?.name).toBe('trampoline-api-signing')
    expect(secret.metadata?.labels).toMatchObject({ a: 'b', 'app.kubernetes.io/component': 'signing' })
    expect(Object.keys(secret.data ?? {}).sort()).toEqual([SIGNING_SECRET_KEYS.publicKey, SIGNING_SECRET_KEYS.secretKey].sort())
    expect(storedPublicKey(secret)).toBe(keys.publicKey)
    expect(storedPublicKey({ data: { [SIGNING_SECRET_KEYS.publicKey]: Buffer.from('junk').toString('base64') } })).toBeUndefined()
    expect(storedPublicKey(undefined)).toBeUndefined()
  })
})

describe('checking the pod\'s signatures locally', () => {
  const key = generateNixKeyPair('pod-1').publicKey
  const local = (keys: string[], requireSigs = true) => ({ trustedPublicKeys: keys, requireSigs })

  it('reads trusted keys from nix show-config --json', () => {
    const json = JSON.stringify({ 'trusted-public-keys': { value: ['a:1', 'b:2'] }, 'require-sigs': { value: true } })
    expect(parseLocalSigConfig(json)).toEqual({ trustedPublicKeys: ['a:1', 'b:2'], requireSigs: true })
    expect(parseLocalSigConfig(JSON.stringify({ 'require-sigs': { value: false } })).requireSigs).toBe(false)
  })

  it('checks by default once the key is known', () => {
    expect(planSigCheck({ publicKey: key, noCheckSigs: false, local: local([key]), isRoot: false })).toEqual({ kind: 'configured' })
    expect(sigCheckArgs({ kind: 'configured' }, 'x')).toEqual([])
  })

  it('lets root add the key for one command, and tells anyone else the nix.conf line', () => {
    expect(sigCheckArgs(planSigCheck({ publicKey: key, noCheckSigs: false, local: local([]), isRoot: true }), 'x')).toEqual([
      '--option',
      'extra-trusted-public-keys',
      key,
    ])
    const plan = planSigCheck({ publicKey: key, noCheckSigs: false, local: local([]), isRoot: false })
    expect(plan.kind).toBe('untrusted')
    try {
      sigCheckArgs(plan, 'x')
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(UserError)
      expect((error as UserError).hint).toContain(trustKeyLine(key))
      expect((error as UserError).hint).toContain('--no-check-sigs')
    }
  })

  it('skips checks only when asked, or for a pod without a key', () => {
    expect(planSigCheck({ publicKey: key, noCheckSigs: true, isRoot: true })).toEqual({ kind: 'off', reason: 'asked' })
    expect(planSigCheck({ noCheckSigs: false, isRoot: false })).toEqual({ kind: 'off', reason: 'no-key' })
    expect(sigCheckArgs({ kind: 'off', reason: 'asked' }, 'x')).toEqual(['--no-check-sigs'])
  })

  it('needs no key where the local Nix does not require signatures', () => {
    expect(planSigCheck({ publicKey: key, noCheckSigs: false, local: local([], false), isRoot: false })).toEqual({ kind: 'configured' })
  })
})
