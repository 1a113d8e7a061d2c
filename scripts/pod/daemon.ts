// Commands in the nix-daemon container, as root: the steps that need a trusted Nix user
// (importing unsigned paths, signing). The user container is never trusted; the CLI is,
// because whoever may exec into this container (RBAC: create pods/exec) is root there
// anyway. Nothing here takes code from the pod: paths travel as arguments or on stdin.
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import type { ExecOptions } from '../kube/exec.ts'
import { captureInPod, runInPod } from './run.ts'
import { DAEMON_CONTAINER, POD_SIGNING_KEY_FILE } from './contract.ts'
import { storePathOf } from './gc-roots.ts'

/** Run in the nix-daemon container; resolves to the exit code (run.ts explains failures). */
export function runInDaemon(context: CommandContext, options: ExecOptions): Promise<number> {
  return runInPod(context, options, DAEMON_CONTAINER)
}

/** Ends the list of missing paths on the import's stdout (see IMPORT_MISSING_SCRIPT). */
export const MISSING_LIST_END = 'trampoline: end of the missing paths'

/**
 * Shell for a whole copy in one exec: stdin starts with a count line and that many store
 * paths; it prints those the store lacks, then MISSING_LIST_END ($2). If any, the rest of
 * stdin is their `nix-store --export` stream: imported, and what was added signed with the
 * instance key at $1 (so it can come back out with signature checks on); that output goes
 * to stderr. The client sends the stream only after the answer, so head cannot read into it.
 */
export const IMPORT_MISSING_SCRIPT =
  'set -o pipefail; IFS= read -r n && [ "$n" -ge 0 ] || exit 2; ' +
  'missing=$(head -n "$n" | xargs -r nix-store --check-validity --print-invalid) || exit 1; ' +
  '[ -z "$missing" ] || printf "%s\\n" "$missing"; printf "%s\\n" "$2"; ' +
  '[ -n "$missing" ] || exit 0; ' +
  'nix-store --import | { if [ -r "$1" ]; then xargs -r nix --extra-experimental-features nix-command store sign --key-file "$1"; else cat >/dev/null; fi; } >&2'

export function importMissingArgv(): string[] {
  return ['bash', '-c', IMPORT_MISSING_SCRIPT, 'trampoline-import', POD_SIGNING_KEY_FILE, MISSING_LIST_END]
}

/**
 * Shell: the paths (stdin) must all be in the store, or it prints those that are not and
 * exits 3; then, with $2 = sign and a key at $1, it signs their closures (idempotent).
 */
export const CHECK_AND_SIGN_SCRIPT =
  'paths=$(cat); ' +
  'missing=$(printf "%s\\n" "$paths" | xargs -r nix-store --check-validity --print-invalid) || exit 1; ' +
  'if [ -n "$missing" ]; then printf "%s\\n" "$missing"; exit 3; fi; ' +
  '[ "$2" = sign ] && [ -r "$1" ] || exit 0; ' +
  'printf "%s\\n" "$paths" | xargs -r nix --extra-experimental-features nix-command store sign --recursive --key-file "$1"'

/**
 * The paths must be in the pod's store (else a clear error naming them), and with `sign`
 * their closures get the instance's signature, so a signature-checking copy accepts them.
 * A pod without a key (made before signing) has nothing to sign with.
 */
export async function checkAndSignInPod(context: CommandContext, paths: string[], options: { sign: boolean }): Promise<void> {
  if (!paths.length) return
  // A file inside a store path stands for that path (as for nix copy); nothing is resolved here.
  const storePaths = paths.map((path) => storePathOf(path, (same) => same) ?? path)
  const command = ['sh', '-c', CHECK_AND_SIGN_SCRIPT, 'trampoline-sign', POD_SIGNING_KEY_FILE, options.sign ? 'sign' : 'check']
  const result = await captureInPod(context, command, { container: DAEMON_CONTAINER, input: `${storePaths.join('\n')}\n` })
  if (result.exitCode === 3) {
    const missing = result.stdout.split('\n').filter(Boolean)
    throw new UserError(`the pod's store does not have ${missing.length === 1 ? missing[0] : `${missing.length} of these paths: ${missing.join(', ')}`}`, {
      hint: 'Build it there first (trampoline build), or check the path (trampoline shell -- nix path-info PATH).',
      exitCode: ExitCode.failure,
    })
  }
  if (result.exitCode !== 0) {
    throw new UserError(`signing in the nix-daemon container failed (exit ${result.exitCode}): ${result.stderr.trim().slice(-500)}`, { exitCode: ExitCode.failure })
  }
}
