// Keep the instance's agent Secret holding the key this machine offers (see agent/key.ts),
// writing it only when it changed, and say which key the pod must see.
import { PatchStrategy, setHeaderOptions, type V1Secret } from '@kubernetes/client-node'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { explainApiError, isConflict } from '../kube/client.ts'
import { readOptionalSecret } from '../pod/objects.ts'
import { agentKeyAction, agentKeyPatch, buildAgentSecret } from '../manifests/agent-secret.ts'
import { API_KEY_ENV, keyFingerprint } from './key.ts'

export interface AgentKeyState {
  /** keyFingerprint of the key the Secret now holds. */
  fingerprint: string
  /** created / updated: the running pod sees it only after the kubelet's next sync. */
  change: 'created' | 'updated' | 'unchanged'
}

type SecretTarget = Pick<CommandContext, 'cluster' | 'names' | 'labels'>

function readAgentSecret({ cluster, names }: SecretTarget): Promise<V1Secret | undefined> {
  return readOptionalSecret(cluster, names.agentSecret)
}

async function patchKey({ cluster, names, labels }: SecretTarget, key: string): Promise<void> {
  try {
    await cluster.core.patchNamespacedSecret(
      { name: names.agentSecret, namespace: cluster.namespace, body: agentKeyPatch(labels, key) },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
  } catch (error) {
    throw explainApiError(error, cluster, `update secret ${names.agentSecret}`)
  }
}

export function noKeyError(target: Pick<CommandContext, 'names'>): UserError {
  return new UserError(`no Anthropic API key: $${API_KEY_ENV} is not set here and secret ${target.names.agentSecret} holds none`, {
    hint: `Set ${API_KEY_ENV}, or pass --api-key-file <path> or --api-key-helper '<command>'. The key is kept in that Secret for later sessions (trampoline clean removes it).`,
    exitCode: ExitCode.local,
  })
}

/** Store `localKey` if it is new; without one, use the stored key or fail clearly. */
export async function syncAgentKey(target: SecretTarget, localKey: string | undefined): Promise<AgentKeyState> {
  const { cluster, names, labels } = target
  const plan = agentKeyAction(await readAgentSecret(target), localKey)
  switch (plan.action) {
    case 'missing':
      throw noKeyError(target)
    case 'keep':
      return { fingerprint: keyFingerprint(plan.key), change: 'unchanged' }
    case 'update':
      await patchKey(target, plan.key)
      return { fingerprint: keyFingerprint(plan.key), change: 'updated' }
    case 'create':
      try {
        await cluster.core.createNamespacedSecret({ namespace: cluster.namespace, body: buildAgentSecret({ names, labels, apiKey: plan.key }) })
        return { fingerprint: keyFingerprint(plan.key), change: 'created' }
      } catch (error) {
        // Another session made it meanwhile: make it hold our key.
        if (!isConflict(error)) throw explainApiError(error, cluster, `create secret ${names.agentSecret}`)
        return syncAgentKey(target, localKey)
      }
  }
}
