// The instance's SSH Secret: host key pair and authorized_keys, mounted at
// /etc/trampoline/ssh in the user container. Pure: keys come in, an object goes out.
import type { V1Secret } from '@kubernetes/client-node'
import type { InstanceNames } from '../instance.ts'

/** File names inside the Secret (and so inside /etc/trampoline/ssh). */
export const SSH_SECRET_KEYS = {
  hostPrivateKey: 'ssh_host_ed25519_key',
  hostPublicKey: 'ssh_host_ed25519_key.pub',
  authorizedKeys: 'authorized_keys',
} as const

export interface SshSecretInput {
  names: InstanceNames
  labels: Record<string, string>
  hostPrivateKey: string
  hostPublicKey: string
  authorizedKeys: string
}

export function buildSshSecret(input: SshSecretInput): V1Secret {
  const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64')
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: input.names.sshSecret, labels: { ...input.labels } },
    type: 'Opaque',
    data: {
      [SSH_SECRET_KEYS.hostPrivateKey]: base64(input.hostPrivateKey),
      [SSH_SECRET_KEYS.hostPublicKey]: base64(input.hostPublicKey),
      [SSH_SECRET_KEYS.authorizedKeys]: base64(input.authorizedKeys),
    },
  }
}

/** A Secret's data decoded to text (the API always returns `data`, base64). */
export function decodeSecretData(secret: Pick<V1Secret, 'data' | 'stringData'>): Record<string, string> {
  const decoded: Record<string, string> = {}
  for (const [key, value] of Object.entries(secret.data ?? {})) decoded[key] = Buffer.from(value, 'base64').toString('utf8')
  return { ...decoded, ...secret.stringData }
}
