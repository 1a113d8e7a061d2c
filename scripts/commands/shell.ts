// `trampoline shell [-- command...]`: a shell (or one command) in the user container, in
// the pushed tree. With a terminal on both ends it is interactive (raw mode, resizes);
// otherwise stdin, stdout and stderr are plain pipes, for scripts, and those go through the
// local mux helper (scripts/mux/) unless --no-mux or TRAMPOLINE_MUX=0.
//
// Only what the helper path needs is imported up front: context.ts, kube/ and attach.ts
// share a chunk with @kubernetes/client-node in the bundle, loaded only for the direct path.
import type { CommandModule } from 'yargs'
import type { GlobalOptions } from '../context.ts'
import { RemoteExit } from '../errors.ts'
import { disableMux } from '../mux/client.ts'
import { runPiped } from '../mux/piped.ts'
import { isInteractive } from '../terminal.ts'
import { WORKSPACE_SRC } from '../pod/contract.ts'

interface ShellArgs extends GlobalOptions {
  command?: string[]
  '--'?: string[]
  mux?: boolean
  'mux-serve'?: boolean
}

/**
 * Remote argv: enter the pushed tree (home if nothing was pushed), pass our TERM to a
 * terminal session, then exec the command, or a login shell.
 */
export function remoteShellArgv(command: string[], term: string | undefined): string[] {
  const wrapper = 'cd -- "$1" 2>/dev/null || cd; [ -n "$2" ] && export TERM="$2"; shift 2; exec "$@"'
  const target = command.length ? command : ['bash', '-l']
  return ['sh', '-c', wrapper, 'trampoline-shell', WORKSPACE_SRC, term ?? '', ...target]
}

export const command: CommandModule<GlobalOptions, ShellArgs> = {
  command: 'shell [command..]',
  describe: 'A shell in the pod, in the pushed tree (or one command: shell -- make test)',
  builder: (yargs) =>
    yargs
      .positional('command', { type: 'string', array: true, describe: 'Command and arguments (put them after --)' })
      .option('mux', {
        type: 'boolean',
        default: true,
        describe: 'Without a terminal, run through the local helper that keeps the connection to the pod (--no-mux or TRAMPOLINE_MUX=0: without)',
      })
      // The helper itself (scripts/mux/server.ts), started by a command that needs it.
      .option('mux-serve', { type: 'boolean', hidden: true })
      .parserConfiguration({ 'populate--': true })
      .example('$0 shell', 'interactive login shell in /workspace/src')
      .example('$0 shell -- nix flake check', 'one command; its exit code is ours')
      .example("echo 'make' | $0 shell", 'a script on stdin, no terminal'),
  handler: async (args) => {
    if (args['mux-serve']) {
      const [{ serveMux }, { commandContext }] = await Promise.all([import('../mux/server.ts'), import('../context.ts')])
      await serveMux(commandContext(args))
      return
    }
    if (args.mux === false) disableMux()
    const argv = [...(args.command ?? []), ...(args['--'] ?? [])].map(String)
    if (!isInteractive()) {
      // Without a command and without a terminal, bash reads its script from our stdin.
      const exitCode = await runPiped(args, remoteShellArgv(argv, undefined), { checkComplete: true })
      if (exitCode !== 0) throw new RemoteExit(exitCode)
      return
    }
    const [{ commandContext }, { requireRunningPod }, { runAttached }] = await Promise.all([
      import('../context.ts'),
      import('../pod/pods.ts'),
      import('../attach.ts'),
    ])
    const context = commandContext(args)
    await requireRunningPod(context)
    const exitCode = await runAttached(context, (term) => remoteShellArgv(argv, term))
    if (exitCode !== 0) throw new RemoteExit(exitCode)
  },
}
