// Whether the local Nix will accept paths signed with the pod's key, and the `nix copy`
// arguments that make it check them. Signature checks stay on whenever the key is known:
// --no-check-sigs is only what the user asks for, or the fallback for a pod that has no
// key (made by an older trampoline).
import { $ } from 'zx'
import { ExitCode, UserError } from '../errors.ts'
import { warn } from '../log.ts'

/** The nix.conf line that makes a local Nix trust the pod's key. */
export function trustKeyLine(publicKey: string): string {
  return `extra-trusted-public-keys = ${publicKey}`
}

export interface LocalSigConfig {
  trustedPublicKeys: string[]
  requireSigs: boolean
}

/** The relevant part of `nix show-config --json` (older Nix) or `nix config show --json`. */
export function parseLocalSigConfig(json: string): LocalSigConfig {
  const settings = JSON.parse(json) as Record<string, { value?: unknown }>
  const keys = settings['trusted-public-keys']?.value
  return {
    trustedPublicKeys: Array.isArray(keys) ? keys.map(String) : [],
    requireSigs: settings['require-sigs']?.value !== false,
  }
}

export async function readLocalSigConfig(): Promise<LocalSigConfig | undefined> {
  // Both spellings at once (a Nix knows only one of them): one Nix start less to wait for.
  const results = await Promise.all(
    [['config', 'show', '--json'], ['show-config', '--json']].map((args) => $({ nothrow: true, quiet: true })`nix --extra-experimental-features nix-command ${args}`),
  )
  for (const result of results) {
    if (result.exitCode === 0) {
      try {
        return parseLocalSigConfig(result.stdout)
      } catch {
        // Not JSON after all: try the other spelling.
      }
    }
  }
  return undefined
}

export type SigCheck =
  | { kind: 'off'; reason: 'asked' | 'no-key' }
  | { kind: 'configured' }
  | { kind: 'option'; publicKey: string }
  | { kind: 'untrusted'; publicKey: string }

/**
 * How `nix copy --from <pod>` checks signatures. Pure: root (and only root, whom every
 * Nix daemon trusts) may add the key for one command; anyone else needs it in nix.conf.
 */
export function planSigCheck(input: { publicKey?: string; noCheckSigs: boolean; local?: LocalSigConfig; isRoot: boolean }): SigCheck {
  if (input.noCheckSigs) return { kind: 'off', reason: 'asked' }
  if (!input.publicKey) return { kind: 'off', reason: 'no-key' }
  if (input.local && (!input.local.requireSigs || input.local.trustedPublicKeys.includes(input.publicKey))) return { kind: 'configured' }
  if (input.isRoot) return { kind: 'option', publicKey: input.publicKey }
  return { kind: 'untrusted', publicKey: input.publicKey }
}

/** The arguments for `nix copy`, or a clear error saying how to trust the key. */
export function sigCheckArgs(plan: SigCheck, instance: string): string[] {
  switch (plan.kind) {
    case 'off':
      if (plan.reason === 'no-key') {
        warn(`instance "${instance}" has no signing key yet (its pod predates signing): copying without signature checks; trampoline setup --name ${instance} adds one`)
      }
      return ['--no-check-sigs']
    case 'configured':
      return []
    case 'option':
      return ['--option', 'extra-trusted-public-keys', plan.publicKey]
    case 'untrusted':
      throw new UserError(`your Nix does not trust the signing key of instance "${instance}", so it would refuse the pod's paths`, {
        hint: `Add this line to /etc/nix/nix.conf and restart nix-daemon:\n  ${trustKeyLine(plan.publicKey)}\nor pass --no-check-sigs to copy without checking.`,
        exitCode: ExitCode.local,
      })
  }
}
