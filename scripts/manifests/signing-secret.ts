// The instance's Nix signing key: the nix-daemon container signs what it builds with it,
// and clients that trust the public half can check that a path came from this pod. The
// Secret is mounted into the nix-daemon container only (k8s-pod.yaml, volume "signing").
// No ownerReference: like the SSH Secret it is the instance's identity (`down` and `gc`
// keep it, `clean` removes it). Pure.
import type { V1Secret } from '@kubernetes/client-node'
import { COMPONENT_LABEL, type InstanceNames } from '../instance.ts'

/** File names under /etc/trampoline/signing in the nix-daemon container. */
export const SIGNING_SECRET_KEYS = { secretKey: 'secret-key', publicKey: 'public-key' } as const
export const SIGNING_COMPONENT = 'signing'

/** Nix's key format, `name:base64`: the secret half is seed + public key (64 bytes), the public half 32 bytes. */
export interface NixKeyPair {
  secretKey: string
  publicKey: string
}

/** A name that tells keys apart in trusted-public-keys: cluster namespace and instance. */
export function signingKeyName(namespace: string, instance: string): string {
  return `trampoline-${namespace}-${instance}-1`
}

/** Nix key pair text from raw ed25519 halves. */
export function nixKeyPair(name: string, seed: Buffer, publicKey: Buffer): NixKeyPair {
  if (seed.length !== 32 || publicKey.length !== 32) throw new Error('ed25519 seed and public key must be 32 bytes each')
  return {
    secretKey: `${name}:${Buffer.concat([seed, publicKey]).toString('base64')}`,
    publicKey: `${name}:${publicKey.toString('base64')}`,
  }
}

/** `name:base64-of-32-bytes`, as trusted-public-keys takes it. */
export function isNixPublicKey(text: string): boolean {
  const match = /^([A-Za-z0-9._-]+):([A-Za-z0-9+/]+={0,2})$/.exec(text)
  return !!match && Buffer.from(match[2], 'base64').length === 32
}

export function signingSecretLabels(labels: Record<string, string>): Record<string, string> {
  return { ...labels, [COMPONENT_LABEL]: SIGNING_COMPONENT }
}

export function buildSigningSecret(input: { names: InstanceNames; labels: Record<string, string>; keys: NixKeyPair }): V1Secret {
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64')
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: input.names.signingSecret, labels: signingSecretLabels(input.labels) },
    type: 'Opaque',
    data: { [SIGNING_SECRET_KEYS.secretKey]: b64(input.keys.secretKey), [SIGNING_SECRET_KEYS.publicKey]: b64(input.keys.publicKey) },
  }
}

/** The public key a Secret holds, if it holds a well-formed one. */
export function storedPublicKey(secret: Pick<V1Secret, 'data'> | undefined): string | undefined {
  const value = secret?.data?.[SIGNING_SECRET_KEYS.publicKey]
  if (!value) return undefined
  const text = Buffer.from(value, 'base64').toString('utf8').trim()
  return isNixPublicKey(text) ? text : undefined
}
