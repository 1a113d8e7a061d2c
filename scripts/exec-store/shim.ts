// The exec store: the local Nix reaches the pod's store with its own ssh-ng:// (or ssh://)
// client, but the connection is an exec of the store program in the user container instead
// of ssh through a port-forward to the pod's sshd. Nix runs `ssh`; for this one command an
// `ssh` of ours comes first on PATH: for the exec store's host it runs `trampoline
// store-stdio` (commands/store-stdio.ts), for any other host the real ssh. Nothing else
// changes: the same program (nix-daemon --stdio) runs as the same untrusted user, and the
// local Nix checks signatures as before. What it saves is ssh's encryption on both ends,
// the pod's sshd, the port-forward and the ProxyCommand's CLI start (it rides the mux
// helper): the data moves at about the raw exec channel's speed.
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { onInterrupt } from '../cleanup.ts'
import { shellQuote } from '../ssh/config.ts'
import { selfCommand } from '../self.ts'
import type { StoreProtocol } from '../local-nix.ts'
import type { CommandContext } from '../context.ts'
import { execStoreHost } from './host.ts'

export interface ExecStoreTarget {
  instance: string
  namespace: string
  context: string
}

/** The exec store of a command's instance, cluster context and namespace. */
export function execStoreTarget(context: Pick<CommandContext, 'names' | 'cluster'>): ExecStoreTarget {
  return { instance: context.names.instance, namespace: context.cluster.namespace, context: context.cluster.context }
}

/**
 * The `ssh` script: our host to `store-stdio` with this instance's options, anything else
 * to the real ssh found on the PATH we were given (without our directory).
 */
export function shimScript(target: ExecStoreTarget, self: string[], realPath: string): string {
  const host = execStoreHost(target.instance)
  const ours = [...self, 'store-stdio', '--context', target.context, '--namespace', target.namespace, '--name', target.instance, '--quiet', '--'].map(shellQuote).join(' ')
  return [
    '#!/bin/sh',
    '# Written by trampoline for one Nix command (see scripts/exec-store/shim.ts).',
    `host=$1; [ "$1" = -O ] && host=$3`,
    `if [ "$host" = ${shellQuote(host)} ]; then exec ${ours} "$@"; fi`,
    `PATH=${shellQuote(realPath)}; export PATH`,
    'exec ssh "$@"',
    '',
  ].join('\n')
}

export interface ExecStore {
  /** The store URL for the local Nix (`--from`, `--to`). */
  url: string
  /** The environment to run that Nix with. */
  env: NodeJS.ProcessEnv
  /** Remove the script (also done on Ctrl-C). */
  dispose(): void
}

const DIR_PREFIX = 'trampoline-exec-store-'

/** Remove our own exec-store dirs in `parent` whose process is gone. Best effort. */
export function removeDeadOnes(parent: string, alive = processAlive): void {
  let names: string[]
  try {
    names = readdirSync(parent)
  } catch {
    return
  }
  const uid = process.getuid?.()
  for (const name of names) {
    const pid = Number(/^trampoline-exec-store-(\d+)-/.exec(name)?.[1])
    if (!pid || alive(pid)) continue
    const dir = join(parent, name)
    try {
      if (uid !== undefined && lstatSync(dir).uid !== uid) continue
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // Someone else removed it, or it is not ours to remove.
    }
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Set up the exec store for one local Nix command. */
function openExecStore(target: ExecStoreTarget, protocol: StoreProtocol = 'ssh-ng', env = process.env): ExecStore {
  removeDeadOnes(tmpdir())
  // Our pid in the name: a later run removes the dir of one killed before it could (SIGKILL).
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`))
  const realPath = env.PATH ?? '/usr/bin:/bin'
  writeFileSync(join(dir, 'ssh'), shimScript(target, selfCommand(env), realPath), { mode: 0o700 })
  chmodSync(dir, 0o700)
  const remove = () => rmSync(dir, { recursive: true, force: true })
  const unregister = onInterrupt(remove)
  return {
    url: `${protocol}://${execStoreHost(target.instance)}`,
    env: { ...env, PATH: `${dir}${delimiter}${realPath}` },
    dispose() {
      unregister()
      remove()
    },
  }
}

/** Run one local Nix command (`use`) with the exec store set up for it, and removed after. */
export async function withExecStore<T>(target: ExecStoreTarget, protocol: StoreProtocol, use: (store: ExecStore) => Promise<T>): Promise<T> {
  const store = openExecStore(target, protocol)
  try {
    return await use(store)
  } finally {
    store.dispose()
  }
}
