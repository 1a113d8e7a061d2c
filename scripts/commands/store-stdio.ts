// `trampoline store-stdio -- SSH-ARGS`: what the exec store's `ssh` runs (see
// scripts/exec-store/shim.ts). Nix thinks it started ssh to the pod; this runs the store
// program Nix asked for (nix-daemon --stdio, or nix-store --serve; never anything else) in
// the user container with stdin and stdout as the protocol's pipes, through the mux
// helper. stdout carries the protocol: everything this says goes to stderr, which Nix
// shows as ssh's.
import type { CommandModule } from 'yargs'
import type { GlobalOptions } from '../context.ts'
import { RemoteExit, UserError } from '../errors.ts'
import { readSshInvocation } from '../exec-store/invocation.ts'
import { execStoreHost } from '../exec-store/host.ts'
import { runPiped } from '../mux/piped.ts'

/** ssh's own failure code: Nix reports the store as unreachable. */
const SSH_FAILURE = 255

interface StoreStdioArgs extends GlobalOptions {
  ssh?: string[]
  '--'?: string[]
}

export const command: CommandModule<GlobalOptions, StoreStdioArgs> = {
  command: 'store-stdio [ssh..]',
  describe: 'Stands in for ssh when the local Nix opens the pod\'s store (copy-closure --from, build, push-flake): its store program, in the user container over exec',
  builder: (yargs) => yargs.positional('ssh', { type: 'string', array: true, describe: 'The arguments Nix gave ssh' }).parserConfiguration({ 'populate--': true }),
  handler: async (args) => {
    const argv = [...(args.ssh ?? []), ...(args['--'] ?? [])].map(String)
    const instance = args.name ?? ''
    const invocation = readSshInvocation(argv, execStoreHost(instance))
    if (invocation.kind === 'master-check') {
      process.exitCode = SSH_FAILURE
      return
    }
    if (invocation.kind === 'refused') {
      throw new UserError(`store-stdio: ${invocation.why}`, { hint: 'Only the local Nix, run by trampoline, calls this.', exitCode: SSH_FAILURE })
    }
    if (invocation.announce) process.stdout.write('started\n')
    const exitCode = await runPiped(args, invocation.command)
    if (exitCode !== 0) throw new RemoteExit(exitCode)
  },
}
