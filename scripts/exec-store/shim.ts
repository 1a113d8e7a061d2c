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
import { ANNOUNCE, STORE_PROGRAMS } from './invocation.ts'
import { BRIDGE_CLAIM, BRIDGE_DOWN, BRIDGE_UP, openFifoBridge, type FifoBridge } from './bridge.ts'

export interface ExecStoreTarget {
  instance: string
  namespace: string
  context: string
}

/** The exec store of a command's instance, cluster context and namespace. */
export function execStoreTarget(context: Pick<CommandContext, 'names' | 'cluster'>): ExecStoreTarget {
  return { instance: context.names.instance, namespace: context.cluster.namespace, context: context.cluster.context }
}

/** The FIFO bridge (bridge.ts) a shim may take: its directory and the store program it serves. */
export interface ShimBridge {
  dir: string
  program: readonly string[]
}

/**
 * The `ssh` script: our host to `store-stdio` with this instance's options, anything else
 * to the real ssh found on the PATH we were given (without our directory). With `bridge`,
 * the first connection that asks for the bridge's program goes through its FIFOs instead
 * (two `cat`s; "started" first when Nix wants ssh's LocalCommand, as store-stdio does).
 */
export function shimScript(target: ExecStoreTarget, self: string[], realPath: string, bridge?: ShimBridge): string {
  const host = execStoreHost(target.instance)
  const ours = [...self, 'store-stdio', '--context', target.context, '--namespace', target.namespace, '--name', target.instance, '--quiet', '--'].map(shellQuote).join(' ')
  const bridged = bridge
    ? (() => {
        const dir = shellQuote(bridge.dir)
        // Nix passes the program as one word (before 2.19) or as words after `--`: "$*" ends with it either way.
        return [
          `if [ "$1" = ${shellQuote(host)} ] && case "$*" in *${shellQuote(` ${bridge.program.join(' ')}`)}) true;; *) false;; esac && mkdir ${dir}/${BRIDGE_CLAIM} 2>/dev/null; then`,
          // Open before anything else: the bridge holds the FIFO, so this does not wait.
          `  exec 3<${dir}/${BRIDGE_DOWN}`,
          `  for a; do [ "$a" = ${shellQuote(ANNOUNCE)} ] && echo started; done`,
          '  cat <&3 &',
          `  exec cat >${dir}/${BRIDGE_UP} 3<&-`,
          'fi',
        ]
      })()
    : []
  return [
    '#!/bin/sh',
    '# Written by trampoline for one Nix command (see scripts/exec-store/shim.ts).',
    ...bridged,
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
  /** The FIFO bridge for the first connection, when asked for and the system has FIFOs. */
  bridge?: FifoBridge
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

/**
 * What the bridge serves: ssh-ng's `nix-daemon --stdio`, run by its caller's exec as root in
 * the daemon container (exec-store/serve.ts for copies home, store-import.ts for copies to
 * the pod). Over ssh:// Nix asks for `nix-store --serve --write` instead: that protocol gets
 * no bridge and takes the general path.
 */
export const BRIDGE_PROGRAM = STORE_PROGRAMS[0]

/** Set up the exec store for one local Nix command; `bridged`: with a FIFO bridge for its first connection (ssh-ng only). */
function openExecStore(target: ExecStoreTarget, protocol: StoreProtocol = 'ssh-ng', bridged = false, env = process.env): ExecStore {
  removeDeadOnes(tmpdir())
  // Our pid in the name: a later run removes the dir of one killed before it could (SIGKILL).
  const dir = mkdtempSync(join(tmpdir(), `${DIR_PREFIX}${process.pid}-`))
  chmodSync(dir, 0o700)
  const realPath = env.PATH ?? '/usr/bin:/bin'
  const bridge = bridged && protocol === 'ssh-ng' ? openFifoBridge(dir) : undefined
  const shimBridge = bridge ? { dir, program: BRIDGE_PROGRAM } : undefined
  writeFileSync(join(dir, 'ssh'), shimScript(target, selfCommand(env), realPath, shimBridge), { mode: 0o700 })
  const remove = () => {
    bridge?.close()
    rmSync(dir, { recursive: true, force: true })
  }
  const unregister = onInterrupt(remove)
  return {
    url: `${protocol}://${execStoreHost(target.instance)}`,
    env: { ...env, PATH: `${dir}${delimiter}${realPath}` },
    bridge,
    dispose() {
      unregister()
      remove()
    },
  }
}

/** Run one local Nix command (`use`) with the exec store set up for it, and removed after. */
export async function withExecStore<T>(
  target: ExecStoreTarget,
  protocol: StoreProtocol,
  use: (store: ExecStore) => Promise<T>,
  options: { bridged?: boolean } = {},
): Promise<T> {
  const store = openExecStore(target, protocol, options.bridged)
  try {
    return await use(store)
  } finally {
    store.dispose()
  }
}
