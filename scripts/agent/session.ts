// What `trampoline claude` runs in the pod: container/agent-session.sh with the expected
// key's fingerprint (never the key), the terminal type and the user's claude arguments.
// Pure, so it is unit-tested.
import type { V1Pod } from '@kubernetes/client-node'
import { ExitCode, UserError } from '../errors.ts'
import type { InstanceNames } from '../instance.ts'
import { AGENT_VOLUME } from '../manifests/pod.ts'
import { AGENT_SECRET_DIR, AGENT_SESSION_SCRIPT, USER_CONTAINER } from '../pod/contract.ts'

export interface AgentSessionOptions {
  /** keyFingerprint of the key the Secret holds: the wrapper waits until the pod sees it. */
  keyFingerprint: string
  /** Our TERM, for a terminal session. */
  term?: string
  /** Start a new conversation instead of continuing the last one. */
  fresh: boolean
  /** Passed to claude as given. */
  args: string[]
  /** Run claude in a tmux session of its own that outlives this connection. */
  detachable?: boolean
}

export function agentSessionArgv(options: AgentSessionOptions): string[] {
  return [
    AGENT_SESSION_SCRIPT,
    '--key-sha256',
    options.keyFingerprint,
    ...(options.term ? ['--term', options.term] : []),
    ...(options.fresh ? ['--new'] : []),
    ...(options.detachable ? ['--detachable'] : []),
    '--',
    ...options.args,
  ]
}

/** Reattach the detachable session `id` (the newest when undefined). */
export function attachSessionArgv(id: string | undefined, term: string | undefined): string[] {
  return [AGENT_SESSION_SCRIPT, '--attach', ...(id ? [id] : []), ...(term ? ['--term', term] : [])]
}

/** Print the pod's detachable sessions as one JSON array. */
export const LIST_SESSIONS_ARGV: readonly string[] = [AGENT_SESSION_SCRIPT, '--list']

/**
 * Make tmux available in the pod: the image's, or `installable` realised through the
 * pod's nix-daemon and rooted at TMUX_ROOT. `replace`: realise it even when the pod has one.
 */
export function provideTmuxArgv(installable: string, replace: boolean): string[] {
  return [AGENT_SESSION_SCRIPT, '--provide-tmux', installable, ...(replace ? ['--replace'] : [])]
}

/** Pods made before agent sessions existed lack the Secret's volume: the key could never arrive. */
export function mountsAgentSecret(pod: V1Pod, names: InstanceNames): boolean {
  const volume = pod.spec?.volumes?.find((v) => v.name === AGENT_VOLUME)
  if (volume?.secret?.secretName !== names.agentSecret) return false
  const user = pod.spec?.containers.find((c) => c.name === USER_CONTAINER)
  return !!user?.volumeMounts?.some((m) => m.name === AGENT_VOLUME && m.mountPath === AGENT_SECRET_DIR)
}

export function requireAgentMount(pod: V1Pod, names: InstanceNames): void {
  if (mountsAgentSecret(pod, names)) return
  throw new UserError(`pod ${names.pod} was made by an older trampoline and cannot receive the agent's API key`, {
    hint: `Run: trampoline setup --name ${names.instance}  (it replaces the pod; the store, workspace and home stay)`,
    exitCode: ExitCode.notFound,
  })
}
