// Keep the instance's signing Secret: created once with a fresh key, then only read. The
// private half goes from this process straight into the Secret; it is never written to
// disk here, printed or logged.
import { generateKeyPairSync } from 'node:crypto'
import type { V1Secret } from '@kubernetes/client-node'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError, isConflict } from '../kube/client.ts'
import { readOptionalSecret } from '../pod/objects.ts'
import { buildSigningSecret, nixKeyPair, signingKeyName, storedPublicKey, type NixKeyPair } from '../manifests/signing-secret.ts'

type SecretTarget = Pick<CommandContext, 'cluster' | 'names' | 'labels'>

export function generateNixKeyPair(name: string): NixKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const jwk = privateKey.export({ format: 'jwk' })
  const raw = (field: string | undefined) => Buffer.from(field ?? '', 'base64url')
  return nixKeyPair(name, raw(jwk.d), raw(publicKey.export({ format: 'jwk' }).x))
}

function readSigningSecret({ cluster, names }: SecretTarget): Promise<V1Secret | undefined> {
  return readOptionalSecret(cluster, names.signingSecret)
}

/** The instance's public signing key, or undefined when it has none yet (a pod from before keys). */
export async function podPublicKey(target: SecretTarget): Promise<string | undefined> {
  return storedPublicKey(await readSigningSecret(target))
}

/** Make sure the Secret exists; returns its public key and whether this call created it. */
export async function syncSigningKey(target: SecretTarget): Promise<{ publicKey: string; created: boolean }> {
  const { cluster, names, labels } = target
  const existing = await readSigningSecret(target)
  if (existing) {
    const publicKey = storedPublicKey(existing)
    if (!publicKey) {
      throw new UserError(`secret ${names.signingSecret} holds no usable public-key`, {
        hint: `Delete it (kubectl delete secret ${names.signingSecret}) and run setup again for a new key; paths signed with the old key then need --no-check-sigs.`,
        exitCode: ExitCode.failure,
      })
    }
    return { publicKey, created: false }
  }
  const keys = generateNixKeyPair(signingKeyName(cluster.namespace, names.instance))
  try {
    await cluster.core.createNamespacedSecret({ namespace: cluster.namespace, body: buildSigningSecret({ names, labels, keys }) })
    return { publicKey: keys.publicKey, created: true }
  } catch (error) {
    // Another setup made it meanwhile: theirs is the key.
    if (isConflict(error)) return syncSigningKey(target)
    throw explainApiError(error, cluster, `create secret ${names.signingSecret}`)
  }
}
