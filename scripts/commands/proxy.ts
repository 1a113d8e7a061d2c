// `trampoline proxy <host>`: ssh's ProxyCommand. stdin/stdout carry the SSH byte stream
// to port 2222 of the pod's user container; anything we have to say goes to stderr.
import type { CommandModule } from 'yargs'
import { pipeline } from 'node:stream/promises'
import { commandContext, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { openPortForward } from '../kube/port-forward.ts'
import { requireRunningPod } from '../kube/pods.ts'
import { explainApiError } from '../kube/client.ts'
import { onInterrupt } from '../cleanup.ts'
import { instanceFromAlias, SSH_PORT } from '../ssh/config.ts'

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
    await requireRunningPod(context)
    const { kc, namespace } = context.cluster
    const tunnel = await openPortForward({ kc, namespace, pod: context.names.pod, port: SSH_PORT }).catch((error) => {
      throw explainApiError(error, context.cluster, `port-forward to pod ${context.names.pod}`)
    })
    onInterrupt(() => void tunnel.destroy())
    // ssh ends us with SIGHUP or by closing our stdin; either way the tunnel goes with us.
    await Promise.race([
      pipeline(tunnel, process.stdout),
      pipeline(process.stdin, tunnel, { end: false }),
    ]).catch((error: Error) => {
      if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return
      throw new UserError(error.message, { exitCode: ExitCode.cluster })
    })
    tunnel.destroy()
    process.stdin.destroy()
  },
}
