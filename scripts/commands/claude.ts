// `trampoline claude [-- claude args]`: Claude Code in the user container, in the pushed
// workspace, continuing the workspace's last conversation (--new starts another). The API
// key goes from this machine into the instance's agent Secret once, and from there, via
// the pod's Secret volume and container/agent-session.sh, into claude's environment: never
// onto a command line, into the pod spec, or into a log. Terminal handling as `shell`.
//
// On a terminal the session is detachable: claude runs in a tmux server of its own in the
// pod, and this command is only its client, so a dropped connection leaves claude running
// (`trampoline sessions` lists such sessions, `claude --attach [id]` comes back). tmux is
// the image's, or one the pod realises once from --tmux / $TRAMPOLINE_TMUX / nixpkgs#tmux.
// Without a terminal (scripts, -p) claude runs straight on the exec, as before.
import type { CommandModule } from 'yargs'
import { commandContext, type CommandContext, type GlobalOptions } from '../context.ts'
import { ExitCode, RemoteExit, UserError } from '../errors.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { runAttached } from '../attach.ts'
import { chooseKeySource, readApiKey } from '../agent/key.ts'
import { syncAgentKey } from '../agent/secret.ts'
import { agentSessionArgv, attachSessionArgv, requireAgentMount } from '../agent/session.ts'
import { DEFAULT_TMUX_INSTALLABLE, NO_SUCH_SESSION_EXIT, TMUX_ENV, listSessions, pickSession, provideTmux } from '../agent/sessions.ts'
import { isInteractive } from '../terminal.ts'
import { info } from '../log.ts'

interface ClaudeArgs extends GlobalOptions {
  claudeArgs?: string[]
  '--'?: string[]
  apiKeyFile?: string
  apiKeyHelper?: string
  new?: boolean
  attach?: string
  detachable?: boolean
  tmux?: string
}

export const command: CommandModule<GlobalOptions, ClaudeArgs> = {
  command: 'claude [claude-args..]',
  describe: 'Claude Code in the pod, in the pushed tree, continuing its last conversation',
  builder: (yargs) =>
    yargs
      .positional('claude-args', { type: 'string', array: true, describe: 'Arguments for claude (put options after --)' })
      .option('api-key-file', { type: 'string', describe: 'Read the Anthropic API key from this file (default: $ANTHROPIC_API_KEY)' })
      .option('api-key-helper', { type: 'string', describe: 'Run this command here; its output is the API key' })
      .option('new', { type: 'boolean', describe: 'Start a new conversation instead of continuing the last one' })
      .option('attach', { type: 'string', describe: 'Reattach a running session (its id from trampoline sessions; the newest without one)' })
      .option('detachable', { type: 'boolean', default: true, describe: 'On a terminal, run claude in a tmux session in the pod that outlives this connection (--no-detachable: plain)' })
      .option('tmux', { type: 'string', describe: `tmux for the pod to realise now and use: an installable or /nix/store path (default when it has none: $${TMUX_ENV}, else ${DEFAULT_TMUX_INSTALLABLE})` })
      .conflicts('api-key-file', 'api-key-helper')
      .conflicts('attach', ['api-key-file', 'api-key-helper', 'new', 'tmux'])
      .parserConfiguration({ 'populate--': true })
      .example('ANTHROPIC_API_KEY=... $0 claude', 'store the key for this instance, then talk to Claude in /workspace/src')
      .example("$0 claude --api-key-helper 'pass show anthropic'", 'take the key from a password manager')
      .example('$0 claude -- -p "run the tests and summarise"', 'one prompt, no terminal needed; claude\'s exit code is ours')
      .example('$0 claude --new', 'a fresh conversation')
      .example('$0 claude --attach', 'back to the newest session after a dropped connection (trampoline sessions lists them)'),
  handler: async (args) => {
    const claudeArgs = [...(args.claudeArgs ?? []), ...(args['--'] ?? [])].map(String)
    if (args.attach !== undefined) return attach(args, claudeArgs)
    // This machine's key first: a bad file or helper is a local problem, whatever the cluster.
    const source = chooseKeySource(args)
    const localKey = source ? await readApiKey(source) : undefined
    const context = commandContext(args)
    // Only ever attach: a stopped or missing pod is an error here, never a reason to start one.
    const pod = await requireRunningPod(context)
    requireAgentMount(pod, context.names)
    const key = await syncAgentKey(context, localKey)
    if (key.change !== 'unchanged') info(`${key.change} the API key in secret ${context.names.agentSecret}`)
    // Detachable sessions need a terminal here to hand over; scripts get claude straight.
    const detachable = args.detachable !== false && isInteractive()
    if (detachable) {
      const replace = args.tmux !== undefined
      await provideTmux(context, args.tmux ?? (process.env[TMUX_ENV] || DEFAULT_TMUX_INSTALLABLE), replace)
    }
    const exitCode = await keepsRunning(context, detachable, () =>
      runAttached(context, (term) =>
        agentSessionArgv({ keyFingerprint: key.fingerprint, term, fresh: args.new ?? false, args: claudeArgs, detachable }),
      ),
    )
    if (exitCode !== 0) throw new RemoteExit(exitCode)
  },
}

async function attach(args: ClaudeArgs, claudeArgs: string[]): Promise<void> {
  if (claudeArgs.length) throw new UserError('--attach takes no claude arguments: the session already runs', { exitCode: ExitCode.usage })
  const context = commandContext(args)
  await requireRunningPod(context)
  // Which session first: "there is none" is the more useful answer, terminal or not.
  const session = pickSession(await listSessions(context), args.attach || undefined, context.names.instance)
  if (!isInteractive()) {
    throw new UserError(`--attach needs a terminal (stdin and stdout) to show session ${session.id}`, {
      hint: 'Run it in a terminal; trampoline sessions lists the sessions without one.',
      exitCode: ExitCode.usage,
    })
  }
  const exitCode = await keepsRunning(context, true, () => runAttached(context, (term) => attachSessionArgv(session.id, term)))
  if (exitCode === NO_SUCH_SESSION_EXIT) {
    throw new UserError(`session ${session.id} ended before it could be reattached`, {
      hint: `trampoline sessions --name ${context.names.instance} lists the running ones.`,
      exitCode: ExitCode.notFound,
    })
  }
  if (exitCode !== 0) throw new RemoteExit(exitCode)
}

/** A lost connection under a detachable session: the session itself lives on; say how to get back. */
async function keepsRunning(context: CommandContext, detachable: boolean, run: () => Promise<number>): Promise<number> {
  try {
    return await run()
  } catch (error) {
    if (!detachable || !(error instanceof UserError)) throw error
    const back = `Claude Code keeps running in the pod: trampoline claude --name ${context.names.instance} --attach (trampoline sessions lists the sessions).`
    throw new UserError(error.message, { hint: error.hint ? `${error.hint}\n  ${back}` : back, exitCode: error.exitCode, cause: error })
  }
}
