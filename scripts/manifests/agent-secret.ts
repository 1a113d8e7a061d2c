// The instance's agent Secret: the Anthropic API key that `trampoline claude` stores once
// and the pod mounts at /etc/trampoline/agent (optional volume). No ownerReference: it
// outlives the pod (`down` keeps it), and `clean` finds it by its labels. Pure.
import type { V1Secret } from '@kubernetes/client-node'
import { COMPONENT_LABEL, type InstanceNames } from '../instance.ts'

/** The Secret's key, hence the file name under /etc/trampoline/agent. */
export const AGENT_KEY_FIELD = 'ANTHROPIC_API_KEY'
export const AGENT_COMPONENT = 'agent'

export interface AgentSecretInput {
  names: InstanceNames
  labels: Record<string, string>
  apiKey: string
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64')
}

export function agentSecretLabels(labels: Record<string, string>): Record<string, string> {
  return { ...labels, [COMPONENT_LABEL]: AGENT_COMPONENT }
}

export function buildAgentSecret(input: AgentSecretInput): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: input.names.agentSecret, labels: agentSecretLabels(input.labels) },
    type: 'Opaque',
    data: { [AGENT_KEY_FIELD]: base64(input.apiKey) },
  }
}

/**
 * A merge patch that replaces only the key (and restores our labels on a Secret made by
 * hand, so that clean finds it); anything else in the Secret stays.
 */
export function agentKeyPatch(labels: Record<string, string>, apiKey: string): Pick<V1Secret, 'metadata' | 'data'> {
  return { metadata: { labels: agentSecretLabels(labels) }, data: { [AGENT_KEY_FIELD]: base64(apiKey) } }
}

/** The stored key, or undefined when the Secret is missing or holds none. */
export function storedAgentKey(secret: Pick<V1Secret, 'data'> | undefined): string | undefined {
  const value = secret?.data?.[AGENT_KEY_FIELD]
  if (!value) return undefined
  return Buffer.from(value, 'base64').toString('utf8') || undefined
}

export type AgentKeyAction =
  | { action: 'create'; key: string }
  | { action: 'update'; key: string }
  | { action: 'keep'; key: string }
  | { action: 'missing' }

/**
 * What to do with the Secret: a key given here wins and is written only when it differs
 * from the stored one; without one, the stored key serves.
 */
export function agentKeyAction(secret: Pick<V1Secret, 'data'> | undefined, localKey: string | undefined): AgentKeyAction {
  const stored = storedAgentKey(secret)
  if (localKey === undefined) return stored === undefined ? { action: 'missing' } : { action: 'keep', key: stored }
  if (!secret) return { action: 'create', key: localKey }
  return stored === localKey ? { action: 'keep', key: localKey } : { action: 'update', key: localKey }
}
