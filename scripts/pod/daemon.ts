// Commands in the nix-daemon container, as root: the steps that need a trusted Nix user
// (importing unsigned paths, signing). The user container is never trusted; the CLI is,
// because whoever may exec into this container (RBAC: create pods/exec) is root there
// anyway. Nothing here takes code from the pod: paths travel as arguments or on stdin.
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import type { ExecOptions } from '../kube/exec.ts'
import { captureInPod, runInPod } from './run.ts'
import { DAEMON_CONTAINER, POD_SIGNING_KEY_FILE } from './contract.ts'

/** Run in the nix-daemon container; resolves to the exit code (run.ts explains failures). */
export function runInDaemon(context: CommandContext, options: ExecOptions): Promise<number> {
  return runInPod(context, options, DAEMON_CONTAINER)
}

async function captureInDaemon(context: CommandContext, command: string[], input?: string): Promise<string> {
  const result = await captureInPod(context, command, { container: DAEMON_CONTAINER, input })
  if (result.exitCode !== 0) {
    throw new UserError(`${command[0]} in the nix-daemon container failed (exit ${result.exitCode}): ${result.stderr.trim().slice(-500)}`, {
      exitCode: ExitCode.failure,
    })
  }
  return result.stdout
}

/** Which of these store paths the pod's store lacks (the list goes on stdin: no argv limit). */
export async function invalidInPod(context: CommandContext, paths: string[]): Promise<string[]> {
  if (!paths.length) return []
  const out = await captureInDaemon(context, ['sh', '-c', 'xargs -r nix-store --check-validity --print-invalid'], `${paths.join('\n')}\n`)
  return out.split('\n').filter(Boolean)
}

/**
 * Shell for the import: nix-store --import reads a `nix-store --export` stream and prints
 * each path it added, and those get the instance's signature (so they can come back out
 * with signature checks on).
 */
export const IMPORT_SCRIPT = `set -o pipefail; nix-store --import | { if [ -r "$1" ]; then xargs -r nix --extra-experimental-features nix-command store sign --key-file "$1"; else cat >/dev/null; fi; }`

export function importArgv(): string[] {
  return ['bash', '-c', IMPORT_SCRIPT, 'trampoline-import', POD_SIGNING_KEY_FILE]
}

/**
 * Sign these paths' closures with the instance's key (idempotent), so a signature-checking
 * copy accepts them. A pod without a key (made before signing) has nothing to sign with.
 */
export async function signClosuresInPod(context: CommandContext, paths: string[]): Promise<void> {
  if (!paths.length) return
  const script = '[ -r "$1" ] || exit 0; xargs -r nix --extra-experimental-features nix-command store sign --recursive --key-file "$1"'
  await captureInDaemon(context, ['sh', '-c', script, 'trampoline-sign', POD_SIGNING_KEY_FILE], `${paths.join('\n')}\n`)
}
