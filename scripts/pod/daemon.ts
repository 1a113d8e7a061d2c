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
import { STALL_CHECK_SECONDS, STALL_CHECKS, WATCHED_FUNCTION } from './watchdog.ts'

/** Run in the nix-daemon container; resolves to the exit code (run.ts explains failures). */
export function runInDaemon(context: CommandContext, options: ExecOptions): Promise<number> {
  return runInPod(context, options, DAEMON_CONTAINER)
}

/** Ends the list of missing paths on the import's stdout (see IMPORT_MISSING_SCRIPT). */
export const MISSING_LIST_END = 'trampoline: end of the missing paths'

/**
 * How the paths come in after the answer: `daemon` serves a root `nix-daemon --stdio` for the
 * local `nix copy --to` (over the FIFO bridge), which writes each path as it arrives;
 * `export` is a `nix-store --export` stream for `nix-store --import`, which holds each whole
 * path in memory before it writes it (the way where the system has no FIFOs).
 */
export type ImportMode = 'daemon' | 'export'

/**
 * Shell for a whole copy in one exec: stdin starts with a count line and that many store
 * paths; it prints those the store lacks (not on disk, or not valid), then MISSING_LIST_END ($2). If any, the rest of
 * stdin is for the program of mode $3 (ImportMode), run under the watchdog ($4 and $5,
 * pod/watchdog.ts); then what it added of the missing paths is signed with the instance
 * key at $1 (so it can come back out with signature checks on), even after a failure
 * (what arrived complete is in the store), and the status is the program's. Signing all
 * of them first proves they all arrived (the usual case, one Nix start); only when that
 * fails are the ones that did found and signed. The client
 * sends the rest only after the answer, so head cannot read into it.
 */
export const IMPORT_MISSING_SCRIPT = [
  WATCHED_FUNCTION,
  'set -o pipefail',
  // The paths on stdin, signed with the key at $1.
  'sign() { xargs -r nix --extra-experimental-features nix-command store sign --quiet --key-file "$key"; }',
  'key=$1',
  'IFS= read -r n && [ "$n" -ge 0 ] || exit 2',
  'mapfile -t paths < <(head -n "$n")',
  // A path not on disk is missing without asking Nix (a fresh copy: no Nix start); one on
  // disk may be left from a copy cut short, so Nix says whether it is valid.
  'lacking=() present=()',
  'for p in "${paths[@]}"; do if [ -e "$p" ] || [ -L "$p" ]; then present+=("$p"); else lacking+=("$p"); fi; done',
  'if [ ${#present[@]} -gt 0 ]; then',
  '  invalid=$(printf "%s\\n" "${present[@]}" | xargs -r nix-store --check-validity --print-invalid) || exit 1',
  '  [ -z "$invalid" ] || mapfile -t -O "${#lacking[@]}" lacking <<<"$invalid"',
  'fi',
  'missing=',
  '[ ${#lacking[@]} -eq 0 ] || missing=$(printf "%s\\n" "${lacking[@]}")',
  '[ -z "$missing" ] || printf "%s\\n" "$missing"',
  'printf "%s\\n" "$2"',
  '[ -n "$missing" ] || exit 0',
  'case $3 in',
  '  daemon) watched "$4" "$5" nix-daemon --stdio ;;',
  '  *) watched "$4" "$5" nix-store --import >/dev/null ;;',
  'esac',
  's=$?',
  '[ -r "$1" ] || exit "$s"',
  // Usually all arrived, and signing them all proves it: one Nix start. Else sign what did.
  'printf "%s\\n" "$missing" | sign >/dev/null 2>&1 && exit "$s"',
  'invalid=$(printf "%s\\n" "$missing" | xargs -r nix-store --check-validity --print-invalid) || exit 1',
  'added=$(printf "%s\\n" "$missing" | grep -vxF -f <(printf "%s\\n" "$invalid"))',
  '[ -z "$added" ] || printf "%s\\n" "$added" | sign >&2 || exit 1',
  'exit "$s"',
].join('\n')

export function importMissingArgv(mode: ImportMode, every = STALL_CHECK_SECONDS, checks = STALL_CHECKS): string[] {
  return ['bash', '-c', IMPORT_MISSING_SCRIPT, 'trampoline-import', POD_SIGNING_KEY_FILE, MISSING_LIST_END, mode, String(every), String(checks)]
}

/**
 * Shell: the paths (stdin) must all be in the store, or it prints those that are not and
 * exits 3; with $2 = sign and a key at $1, their closures get signed (idempotent). Signing
 * goes first and proves validity on its own, so the usual case costs one Nix start; only
 * when it fails does the check say whether paths are missing (exit 3, the signing's error
 * dropped) or the signing itself failed (its error, exit 1).
 */
export const CHECK_AND_SIGN_SCRIPT =
  'paths=$(cat); err=; ' +
  'if [ "$2" = sign ] && [ -r "$1" ]; then ' +
  'err=$(printf "%s\\n" "$paths" | xargs -r nix --extra-experimental-features nix-command store sign --quiet --recursive --key-file "$1" 2>&1 >/dev/null) && exit 0; ' +
  '[ -n "$err" ] || err="nix store sign failed"; fi; ' +
  'missing=$(printf "%s\\n" "$paths" | xargs -r nix-store --check-validity --print-invalid) || exit 1; ' +
  'if [ -n "$missing" ]; then printf "%s\\n" "$missing"; exit 3; fi; ' +
  'if [ -n "$err" ]; then printf "%s\\n" "$err" >&2; exit 1; fi'

/** The paths as CHECK_AND_SIGN_SCRIPT takes them: a file inside a store path stands for that path (as for nix copy). */
export function signInput(paths: string[]): string {
  return `${paths.map((path) => storePathOf(path, (same) => same) ?? path).join('\n')}\n`
}

/** CHECK_AND_SIGN_SCRIPT's arguments: the key file and the mode. */
export function signArgs(options: { sign: boolean }): string[] {
  return [POD_SIGNING_KEY_FILE, options.sign ? 'sign' : 'check']
}

/** The error for paths the pod's store lacks (CHECK_AND_SIGN_SCRIPT's exit 3). */
export function notInPodStore(missing: string[]): UserError {
  return new UserError(`the pod's store does not have ${missing.length === 1 ? missing[0] : `${missing.length} of these paths: ${missing.join(', ')}`}`, {
    hint: 'Build it there first (trampoline build), or check the path (trampoline shell -- nix path-info PATH).',
    exitCode: ExitCode.failure,
  })
}

export function signingFailed(exitCode: number, detail = ''): UserError {
  return new UserError(`signing in the nix-daemon container failed (exit ${exitCode})${detail ? `: ${detail}` : ''}`, { exitCode: ExitCode.failure })
}

/**
 * The paths must be in the pod's store (else a clear error naming them), and with `sign`
 * their closures get the instance's signature, so a signature-checking copy accepts them.
 * A pod without a key (made before signing) has nothing to sign with.
 */
export async function checkAndSignInPod(context: CommandContext, paths: string[], options: { sign: boolean }): Promise<void> {
  if (!paths.length) return
  const command = ['sh', '-c', CHECK_AND_SIGN_SCRIPT, 'trampoline-sign', ...signArgs(options)]
  const result = await captureInPod(context, command, { container: DAEMON_CONTAINER, input: signInput(paths) })
  if (result.exitCode === 3) throw notInPodStore(result.stdout.split('\n').filter(Boolean))
  if (result.exitCode !== 0) throw signingFailed(result.exitCode, result.stderr.trim().slice(-500))
}
