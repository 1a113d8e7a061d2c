// What `trampoline claude` runs in the pod: container/agent-session.sh with the expected
// key's fingerprint (never the key), the terminal type and the user's claude arguments.
// Pure, so it is unit-tested.
import type { V1Pod } from '@kubernetes/client-node'
import { ExitCode, UserError } from '../errors.ts'
import type { InstanceNames } from '../instance.ts'
import { AGENT_VOLUME, USER_CONTAINER } from '../manifests/pod.ts'

export const AGENT_SESSION_SCRIPT = '/opt/trampoline/agent-session.sh'
export const AGENT_SECRET_DIR = '/etc/trampoline/agent'

export interface AgentSessionOptions {
  /** keyFingerprint of the key the Secret holds: the wrapper waits until the pod sees it. */
  keyFingerprint: string
  /** Our TERM, for a terminal session. */
  term?: string
  /** Start a new conversation instead of continuing the last one. */
  fresh: boolean
  /** Passed to claude as given. */
  args: string[]
}

export function agentSessionArgv(options: AgentSessionOptions): string[] {
  return [
    AGENT_SESSION_SCRIPT,
    '--key-sha256',
    options.keyFingerprint,
    ...(options.term ? ['--term', options.term] : []),
    ...(options.fresh ? ['--new'] : []),
    '--',
    ...options.args,
  ]
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
