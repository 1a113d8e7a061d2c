// `trampoline ssh`: an SSH session to the pod over a port-forward, host key pinned.
// `--config` prints an ssh_config block for system ssh and Nix instead.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { RemoteExit, ExitCode, UserError } from '../errors.ts'
import { openPortForward } from '../kube/port-forward.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { explainApiError } from '../kube/client.ts'
import { onInterrupt } from '../cleanup.ts'
import { SSH_PORT } from '../ssh/config.ts'
import { readSshCredentials, writeSshFiles } from '../ssh/files.ts'
import { connectSsh, runSsh } from '../ssh/session.ts'

interface SshArgs extends GlobalOptions {
  config?: boolean
  command?: string[]
  '--'?: string[]
}

export const command: CommandModule<GlobalOptions, SshArgs> = {
  command: 'ssh [command..]',
  describe: 'SSH into the pod (pinned host key, no open ports); --config prints an ssh_config block',
  builder: (yargs) =>
    yargs
      .positional('command', { type: 'string', array: true, describe: 'Command to run instead of a login shell' })
      .option('config', { type: 'boolean', describe: 'Print an ssh_config Host block (for ssh -F and NIX_SSHOPTS) and exit' })
      .parserConfiguration({ 'populate--': true })
      .example('$0 ssh', 'interactive shell in the pod')
      .example('$0 ssh -- nix store ping', 'run one command')
      .example('$0 ssh --config > ~/.ssh/trampoline.conf', 'then: ssh -F ~/.ssh/trampoline.conf trampoline-<name>'),
  handler: async (args) => {
    const context = commandContext(args)
    if (args.config) {
      const files = writeSshFiles(context, args)
      const block = context.state.read('ssh_config') ?? ''
      printResult(context, files, () => block)
      return
    }
    const credentials = readSshCredentials(context)
    await requireRunningPod(context)
    const { kc, namespace } = context.cluster
    const tunnel = await openPortForward({ kc, namespace, pod: context.names.pod, port: SSH_PORT }).catch((error) => {
      throw explainApiError(error, context.cluster, `port-forward to pod ${context.names.pod}`)
    })
    onInterrupt(() => void tunnel.destroy())
    const client = await connectSsh(tunnel, credentials).catch((error: Error) => {
      throw new UserError(`SSH to pod ${context.names.pod} failed: ${error.message}`, {
        hint: 'If the instance was re-created elsewhere, run setup again to refresh the keys.',
        exitCode: ExitCode.cluster,
      })
    })
    // Like OpenSSH: the words after -- are joined into one remote command line.
    const words = [...(args.command ?? []), ...(args['--'] ?? [])].map(String)
    const tty = process.stdin.isTTY === true && process.stdout.isTTY === true && !words.length
    if (tty) process.stdin.setRawMode(true)
    const restore = () => {
      if (tty) process.stdin.setRawMode(false)
      process.stdin.pause()
    }
    onInterrupt(restore)
    try {
      const joined = words.length ? words.join(' ') : undefined
      const result = await runSsh(client, joined, tty)
      if (result.exitCode !== 0) throw new RemoteExit(result.exitCode)
    } finally {
      restore()
      client.end()
      tunnel.destroy()
    }
  },
}
