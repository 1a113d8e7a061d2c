// Every subcommand, registered lazily: the command line and description here are all that
// `trampoline --help` (and --version, and a mistyped command) needs, and a command's own
// module, with @kubernetes/client-node and the rest of its imports, is loaded only when that
// command runs or shows its own --help. index.test.ts checks each entry against its module:
// a new command, or a changed `command`/`describe`, goes here too.
import type { Argv, CommandModule } from 'yargs'
import type { GlobalOptions } from '../context.ts'

type AnyCommand = CommandModule<GlobalOptions, any>

export interface CommandEntry {
  /** Exactly the module's `command` (its positionals are parsed from this one). */
  command: string
  /** Exactly the module's `describe`. */
  describe: string
  load: () => Promise<{ command: AnyCommand }>
}

// In the order `trampoline --help` lists them.
export const COMMANDS: readonly CommandEntry[] = [
  { command: 'setup', describe: 'Create or reuse the instance (store volume, keys, scripts, pod) and wait until it is ready', load: () => import('./setup.ts') },
  { command: 'status', describe: 'List instances: phase, age, idle time and activity, store use', load: () => import('./status.ts') },
  { command: 'push-tarball', describe: 'Push the git tree (HEAD, or the work tree with --worktree) to /workspace/src in the pod', load: () => import('./push-tarball.ts') },
  { command: 'diff', describe: 'Show what changed in the pod\'s /workspace/src since the last push (edits, new and deleted files, commits)', load: () => import('./diff.ts') },
  { command: 'pull', describe: 'Bring the pod\'s changes home: its commits as commits, its uncommitted edits into the work tree (conflicts reported, never overwritten)', load: () => import('./pull.ts') },
  { command: 'push-flake [flake]', describe: 'Copy a flake and its inputs into the pod\'s store', load: () => import('./push-flake.ts') },
  { command: 'build [installables..]', describe: 'nix build in the pod, in the pushed tree; prints result paths and keeps them GC-rooted', load: () => import('./build.ts') },
  { command: 'shell [command..]', describe: 'A shell in the pod, in the pushed tree (or one command: shell -- make test)', load: () => import('./shell.ts') },
  { command: 'claude [claude-args..]', describe: 'Claude Code in the pod, in the pushed tree, continuing its last conversation', load: () => import('./claude.ts') },
  { command: 'sessions', describe: 'List the Claude Code sessions running in the pod (id, started, attached, command); claude --attach [id] reattaches', load: () => import('./sessions.ts') },
  { command: 'sh', describe: 'sh -c for local agents: run a command in the pod\'s copy of this directory, pushing changes first', load: () => import('./sh.ts') },
  { command: 'ssh [command..]', describe: 'SSH into the pod (pinned host key, no open ports); --config prints an ssh_config block', load: () => import('./ssh.ts') },
  { command: 'proxy <host>', describe: 'ProxyCommand for ssh and Nix: relay stdin/stdout to the pod\'s sshd (see ssh --config)', load: () => import('./proxy.ts') },
  { command: 'store-stdio [ssh..]', describe: 'Stands in for ssh when the local Nix opens the pod\'s store (copy-closure --from, build, push-flake): its store program, in the user container over exec', load: () => import('./store-stdio.ts') },
  { command: 'builder', describe: 'Serve the pod as a remote builder for this machine\'s Nix (ssh-ng over a local socket, to a trusted nix-daemon in the pod via exec)', load: () => import('./builder.ts') },
  { command: 'copy-closure <paths..>', describe: 'Copy store paths with their closures to the pod (or --from the pod to the local store)', load: () => import('./copy-closure.ts') },
  { command: 'maintenance', describe: 'Garbage-collect and optimise the pod\'s Nix store (keeps pushed sources and build results)', load: () => import('./maintenance.ts') },
  { command: 'down', describe: 'Stop the instance: delete its pod, keep its store and keys (setup brings it back)', load: () => import('./down.ts') },
  { command: 'clean', describe: 'Delete the instance and everything it owns, including its Nix store (--keep-store keeps that)', load: () => import('./clean.ts') },
  { command: 'gc', describe: 'Remove expired session pods and objects left without a pod (stores kept unless --include-stores)', load: () => import('./gc.ts') },
  { command: 'doctor', describe: 'Check that the cluster and your rights can run trampoline (RBAC, Pod Security, StorageClass, node architectures); each problem with its fix', load: () => import('./doctor.ts') },
]

/**
 * A yargs command module that stands for `entry`: listed from the entry alone, it imports
 * the real module when yargs runs its builder (this command was chosen, to run or for its
 * --help) and hands over builder and handler.
 */
export function lazyCommand(entry: CommandEntry): AnyCommand {
  let loading: Promise<AnyCommand> | undefined
  const real = () => (loading ??= entry.load().then((module) => module.command))
  return {
    command: entry.command,
    describe: entry.describe,
    // yargs (parseAsync) waits for a builder's promise before it parses the command's options.
    builder: (async (yargs: Argv<GlobalOptions>) => {
      const { builder } = await real()
      if (typeof builder === 'function') return builder(yargs)
      return builder ? yargs.options(builder) : yargs
    }) as unknown as AnyCommand['builder'],
    handler: async (args) => {
      await (await real()).handler(args)
    },
  }
}
