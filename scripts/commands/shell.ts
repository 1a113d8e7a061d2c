// `trampoline shell [-- command...]`: a shell (or one command) in the user container, in
// the pushed tree. With a terminal on both ends it is interactive (raw mode, resizes);
// otherwise stdin, stdout and stderr are plain pipes, for scripts.
import type { CommandModule } from 'yargs'
import { commandContext, type GlobalOptions } from '../context.ts'
import { RemoteExit } from '../errors.ts'
import { requireRunningPod } from '../kube/pods.ts'
import { runAttached } from '../attach.ts'
import { WORKSPACE_SRC } from '../workspace.ts'

interface ShellArgs extends GlobalOptions {
  command?: string[]
  '--'?: string[]
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
      .parserConfiguration({ 'populate--': true })
      .example('$0 shell', 'interactive login shell in /workspace/src')
      .example('$0 shell -- nix flake check', 'one command; its exit code is ours')
      .example("echo 'make' | $0 shell", 'a script on stdin, no terminal'),
  handler: async (args) => {
    const context = commandContext(args)
    const argv = [...(args.command ?? []), ...(args['--'] ?? [])].map(String)
    await requireRunningPod(context)
    // Without a command and without a terminal, bash reads its script from our stdin.
    const exitCode = await runAttached(context, (term) => remoteShellArgv(argv, term))
    if (exitCode !== 0) throw new RemoteExit(exitCode)
  },
}
