// Running the local nix against the pod's store over ssh-ng://, through our ssh_config.
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

export async function requireLocalNix(): Promise<void> {
  const found = await $({ nothrow: true, quiet: true })`command -v nix`
  if (found.exitCode !== 0) {
    throw new UserError('this command needs a local Nix (nix was not found on PATH)', {
      hint: 'Install Nix, or use nix develop / nix run from the trampoline flake.',
      exitCode: ExitCode.local,
    })
  }
}

/** Run local nix with live output; a failure passes its exit code through. */
export async function runNix(args: string[], files: SshFiles, options: { capture?: boolean } = {}): Promise<string> {
  const result = await $({
    nothrow: true,
    stdio: options.capture ? ['inherit', 'pipe', 'inherit'] : 'inherit',
    env: nixSshEnv(files),
  })`nix ${args}`
  if (result.exitCode !== 0) throw new RemoteExit(result.exitCode ?? 1)
  return options.capture ? result.stdout : ''
}
