// Running the local nix against the pod's store: over the exec store (exec-store/shim.ts),
// or for local evaluation over ssh-ng:// through our ssh_config.
import { $ } from 'zx'
import { ExitCode, RemoteExit, UserError } from './errors.ts'
import type { SshFiles } from './ssh/files.ts'
import { nixSshEnv } from './ssh/files.ts'

export const NIX_FEATURES = ['--extra-experimental-features', 'nix-command flakes']

export type StoreProtocol = 'ssh-ng' | 'ssh'

export function podStoreUrl(files: Pick<SshFiles, 'alias'>, protocol: StoreProtocol = 'ssh-ng'): string {
  return `${protocol}://${files.alias}`
}

/** `nix copy --from` the pod; sigArgs say how signatures are checked (signing/local-trust.ts). */
export function nixCopyFromArgs(store: string, paths: string[], sigArgs: string[]): string[] {
  return [...NIX_FEATURES, 'copy', ...sigArgs, '--from', store, ...paths]
}

/** Whether nix (and nix-store, which roots results) are on PATH. */
export async function hasLocalNix(): Promise<boolean> {
  const found = await $({ nothrow: true, quiet: true })`command -v nix && command -v nix-store`
  return found.exitCode === 0
}

export async function requireLocalNix(): Promise<void> {
  if (!(await hasLocalNix())) {
    throw new UserError('this command needs a local Nix (nix or nix-store was not found on PATH)', {
      hint: 'Install Nix, or use nix develop / nix run from the trampoline flake.',
      exitCode: ExitCode.local,
    })
  }
}

/** Run local nix with live output (env: the exec store's, exec-store/shim.ts); a failure passes its exit code through. */
export async function runNix(args: string[], env: NodeJS.ProcessEnv, options: { capture?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  const { signal } = options
  if (signal?.aborted) throw new RemoteExit(1)
  const nix = $({ nothrow: true, stdio: options.capture ? ['inherit', 'pipe', 'inherit'] : 'inherit', env })`nix ${args}`
  // SIGKILL, not SIGTERM: the caller says why; Nix would add "interrupted by the user".
  // (zx's shell execs the command, so the pid is Nix's.)
  const stop = () => {
    try {
      if (nix.pid) process.kill(nix.pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  signal?.addEventListener('abort', stop, { once: true })
  const result = await nix.finally(() => signal?.removeEventListener('abort', stop))
  if (result.exitCode !== 0) throw new RemoteExit(result.exitCode ?? 1)
  return options.capture ? result.stdout : ''
}

/** A Nix system name such as x86_64-linux or aarch64-darwin (nothing a shell or a path could misread). */
export function isSystemName(text: string): boolean {
  return /^[A-Za-z0-9_]+(-[A-Za-z0-9_]+)+$/.test(text)
}

/** `nix-instantiate --eval` of a system prints it quoted: `"x86_64-linux"`. */
export function parseNixString(stdout: string): string | undefined {
  const text = stdout.trim()
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === 'string' && isSystemName(value) ? value : undefined
  } catch {
    return undefined
  }
}

/** argv (anywhere: here or in the pod) that prints Nix's system, e.g. "x86_64-linux"; no experimental features needed. */
export const CURRENT_SYSTEM_ARGV = ['nix-instantiate', '--eval', '--expr', 'builtins.currentSystem']

/** The laptop's Nix system, or undefined when it cannot say. */
export async function localSystem(): Promise<string | undefined> {
  const result = await $({ nothrow: true, quiet: true })`${CURRENT_SYSTEM_ARGV}`
  return result.exitCode === 0 ? parseNixString(result.stdout) : undefined
}

/**
 * Make `link` a local GC root for `path`, as nix build does with ./result: the symlink plus
 * an indirect root in the store's gcroots/auto. nix-store does both, also for a non-root
 * user through the daemon (AddIndirectRoot needs no trust), and refuses to replace
 * anything but a symlink into the store.
 */
export async function addLocalRoot(link: string, path: string): Promise<void> {
  const result = await $({ nothrow: true, quiet: true })`nix-store --add-root ${link} --realise ${path}`
  if (result.exitCode !== 0) {
    throw new UserError(`could not link ${link} to ${path}: ${result.stderr.trim().split('\n').pop()}`, {
      hint: 'Remove or rename what is there, or pick another name with --out-link (or --no-link).',
      exitCode: ExitCode.local,
    })
  }
}

/** Run local nix against the pod, stderr live, stdout captured; the exit code is returned, not thrown. */
export async function runNixCapture(args: string[], files: SshFiles): Promise<{ exitCode: number; stdout: string }> {
  const result = await $({ nothrow: true, stdio: ['inherit', 'pipe', 'inherit'], env: nixSshEnv(files) })`nix ${args}`
  return { exitCode: result.exitCode ?? 1, stdout: result.stdout }
}
