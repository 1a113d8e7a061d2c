// `trampoline proxy <host>`: ssh's ProxyCommand. stdin/stdout carry the SSH byte stream
// to port 2222 of the pod's user container; anything we have to say goes to stderr.
//
// Retries: opening the tunnel is retried for a while when the cluster does not answer
// (an API server restarting): no byte of the SSH stream has gone anywhere yet, and ssh's
// first bytes wait in our stdin pipe. A tunnel lost mid-session is never reopened: a
// second TCP connection spliced into the same byte stream would corrupt SSH. We end with
// a clear error instead, and ssh ends with us.
import type { CommandModule } from 'yargs'
import { pipeline } from 'node:stream/promises'
import { ApiException } from '@kubernetes/client-node'
import { commandContext, type CommandContext, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { UpgradeError } from '../kube/channel.ts'
import { openPortForward, TunnelLostError } from '../kube/port-forward.ts'
import { lostExecError, podAfterLoss, requireRunningPod } from '../pod/pods.ts'
import { networkErrorCode } from '../kube/client.ts'
import { explainExecOpen } from '../pod/run.ts'
import { onInterrupt } from '../cleanup.ts'
import { warn } from '../log.ts'
import { instanceFromAlias, SSH_PORT } from '../ssh/config.ts'

/** How long opening the tunnel is retried while the cluster does not answer. */
export const OPEN_RETRY_MS = 30_000

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET',
])

/**
 * Whether another try may succeed: the cluster did not answer (refused, reset, timed out)
 * or said it is not ready yet (503, 429). Not: credentials, RBAC, a missing pod, TLS.
 */
export function isTransient(error: unknown): boolean {
  const raw = error instanceof UserError ? error.cause : error
  if (raw === undefined || raw === null) return false
  if (raw instanceof UpgradeError) return raw.statusCode === 503 || raw.statusCode === 429
  if (raw instanceof ApiException) return raw.code === 503 || raw.code === 429
  const code = networkErrorCode(raw)
  return code !== undefined && TRANSIENT_CODES.has(code)
}

export interface RetryOptions {
  deadlineMs: number
  /** Called before each wait; `leftMs` is what remains of the deadline. */
  onRetry?: (error: unknown, leftMs: number) => void
  sleep?: (ms: number) => Promise<void>
  now?: () => number
}

/** Run `attempt` until it succeeds, fails for good, or the deadline passes (backoff 0.25 s to 2 s). */
export async function retryTransient<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  const now = options.now ?? Date.now
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)))
  const started = now()
  let delay = 250
  for (;;) {
    try {
      return await attempt()
    } catch (error) {
      const left = options.deadlineMs - (now() - started)
      if (!isTransient(error) || left <= 0) throw error
      options.onRetry?.(error, left)
      await sleep(Math.min(delay, left))
      delay = Math.min(delay * 2, 2000)
    }
  }
}

/** The tunnel, once the pod is there and the port-forward is open (retried while the cluster does not answer). */
async function openTunnel(context: CommandContext) {
  const { kc, namespace } = context.cluster
  let warned = false
  return retryTransient(
    async () => {
      await requireRunningPod(context)
      return openPortForward({ kc, namespace, pod: context.names.pod, port: SSH_PORT }).catch((error) => {
        throw explainExecOpen(error, context, `port-forward to pod ${context.names.pod}`, 'pods/portforward')
      })
    },
    {
      deadlineMs: OPEN_RETRY_MS,
      onRetry: (error, left) => {
        if (warned) return
        warned = true
        warn(`${error instanceof Error ? error.message : String(error)}; trying again for up to ${Math.ceil(left / 1000)}s`)
      },
    },
  )
}

/** Why the session ended early, as the user should hear it. */
async function sessionLost(context: CommandContext, error: Error): Promise<UserError> {
  if (!(error instanceof TunnelLostError)) {
    return new UserError(`the ssh tunnel to pod ${context.names.pod} failed: ${error.message}`, { exitCode: ExitCode.cluster, cause: error })
  }
  const lost = lostExecError(context, error.message, await podAfterLoss(context), 'the ssh session')
  return new UserError(lost.message, {
    hint: `${lost.hint} A session is never reconnected (that would corrupt the SSH stream); running nix copy or copy-closure again is safe (a store path is registered only once complete).`,
    exitCode: lost.exitCode,
    cause: error,
  })
}

export const command: CommandModule<GlobalOptions, GlobalOptions & { host: string }> = {
  command: 'proxy <host>',
  describe: 'ProxyCommand for ssh and Nix: relay stdin/stdout to the pod\'s sshd (see ssh --config)',
  builder: (yargs) => yargs.positional('host', { type: 'string', demandOption: true, describe: 'Host alias trampoline-<instance>' }),
  handler: async (args) => {
    const instance = instanceFromAlias(args.host)
    if (!instance) {
      throw new UserError(`"${args.host}" is not a trampoline host alias (expected trampoline-<instance>)`, { exitCode: ExitCode.usage })
    }
    if (args.name && args.name !== instance) {
      throw new UserError(`host ${args.host} does not match --name ${args.name}`, { exitCode: ExitCode.usage })
    }
    const context = commandContext({ ...args, name: instance })
    const tunnel = await openTunnel(context)
    onInterrupt(() => void tunnel.destroy())
    try {
      // ssh ends us with SIGHUP or by closing our stdin; either way the tunnel goes with us.
      await Promise.race([
        pipeline(tunnel, process.stdout),
        pipeline(process.stdin, tunnel, { end: false }),
      ]).catch(async (error: Error) => {
        // Either side may report first; the tunnel's own error, if it has one, says why.
        const cause = tunnel.errored ?? error
        if ((cause as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return
        throw await sessionLost(context, cause)
      })
    } finally {
      // Whatever happened, nothing of ours stays open: ssh sees our end of the pipes close
      // and ends too.
      tunnel.destroy()
      process.stdin.destroy()
    }
  },
}
