// `trampoline claude [-- claude args]`: Claude Code in the user container, in the pushed
// workspace, continuing the workspace's last conversation (--new starts another). The API
// key goes from this machine into the instance's agent Secret once, and from there, via
// the pod's Secret volume and container/agent-session.sh, into claude's environment: never
// onto a command line, into the pod spec, or into a log. Terminal handling as `shell`.
import type { CommandModule } from 'yargs'
import { commandContext, type GlobalOptions } from '../context.ts'
import { RemoteExit } from '../errors.ts'
import { requireRunningPod } from '../kube/pods.ts'
import { runAttached } from '../attach.ts'
import { chooseKeySource, readApiKey } from '../agent/key.ts'
import { syncAgentKey } from '../agent/secret.ts'
import { agentSessionArgv, requireAgentMount } from '../agent/session.ts'
import { info } from '../log.ts'

interface ClaudeArgs extends GlobalOptions {
  claudeArgs?: string[]
  '--'?: string[]
  apiKeyFile?: string
  apiKeyHelper?: string
  new?: boolean
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
      .conflicts('api-key-file', 'api-key-helper')
      .parserConfiguration({ 'populate--': true })
      .example('ANTHROPIC_API_KEY=... $0 claude', 'store the key for this instance, then talk to Claude in /workspace/src')
      .example("$0 claude --api-key-helper 'pass show anthropic'", 'take the key from a password manager')
      .example('$0 claude -- -p "run the tests and summarise"', 'one prompt, no terminal needed; claude\'s exit code is ours')
      .example('$0 claude --new', 'a fresh conversation'),
  handler: async (args) => {
    // This machine's key first: a bad file or helper is a local problem, whatever the cluster.
    const source = chooseKeySource(args)
    const localKey = source ? await readApiKey(source) : undefined
    const context = commandContext(args)
    // Only ever attach: a stopped or missing pod is an error here, never a reason to start one.
    const pod = await requireRunningPod(context)
    requireAgentMount(pod, context.names)
    const key = await syncAgentKey(context, localKey)
    if (key.change !== 'unchanged') info(`${key.change} the API key in secret ${context.names.agentSecret}`)
    const claudeArgs = [...(args.claudeArgs ?? []), ...(args['--'] ?? [])].map(String)
    const exitCode = await runAttached(context, (term) =>
      agentSessionArgv({ keyFingerprint: key.fingerprint, term, fresh: args.new ?? false, args: claudeArgs }),
    )
    if (exitCode !== 0) throw new RemoteExit(exitCode)
  },
}
