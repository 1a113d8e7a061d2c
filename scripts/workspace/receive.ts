// push-receive.sh's interface as the CLI sees it: the receive command line, the exit codes
// that mean more than "failed", and the errors they become. Kept apart from push.ts (and
// free of client-node) so the sh adapter's push through the mux helper needs only this.
import { ExitCode, UserError } from '../errors.ts'
import { PUSH_RECEIVE, TREES_DIR, WORKSPACE_SRC } from '../pod/contract.ts'
import { describeChanges, type PodState } from './state.ts'

/** push-receive.sh's exit codes that mean more than "failed" (see its header). */
export const PUSH_RECEIVE_EXIT = {
  /** No space left on the instance's volume (ENOSPC's errno). */
  volumeFull: 28,
  /** The pod has changes since the last push; its state is on stdout. */
  podChanges: 66,
  /** The pod's pushed tree is not the one the sender assumed; its state is on stdout. */
  resend: 67,
  /** Another push held the pod's push lock for the whole bounded wait (EX_TEMPFAIL). */
  busy: 75,
} as const

/** The pod's push lock (a directory naming its holder; push-receive.sh). */
const WORKSPACE_TREES_LOCK = `${TREES_DIR}/.push-lock`

/** The error for push-receive.sh exiting non-zero; its own message is already on stderr. */
export function pushReceiveError(exitCode: number, instance: string, tree: string): UserError {
  const unchanged = `The previous push in ${WORKSPACE_SRC} is unchanged.`
  if (exitCode === PUSH_RECEIVE_EXIT.volumeFull) {
    return new UserError(`the store volume is full: tree ${tree.slice(0, 12)} does not fit on the volume of instance "${instance}" (No space left on device)`, {
      hint: `${unchanged} Free space with: trampoline maintenance --name ${instance}  (garbage-collects the store), ` +
        `or give it a bigger volume: trampoline setup --name ${instance} --store-size <bigger>  (where the StorageClass allows resizing; else trampoline clean, then setup --store-size).`,
      exitCode: ExitCode.failure,
    })
  }
  if (exitCode === PUSH_RECEIVE_EXIT.busy) {
    return new UserError(`another push to instance "${instance}" held the pod's push lock too long; tree ${tree.slice(0, 12)} was not pushed`, {
      hint: `${unchanged} Try again when the other push is done (its message says which process holds ${WORKSPACE_TREES_LOCK}).`,
      exitCode: ExitCode.failure,
    })
  }
  return new UserError(`${PUSH_RECEIVE} in the pod failed with exit code ${exitCode}`, {
    hint: `${unchanged} See the pod's message above.`,
    exitCode: ExitCode.failure,
  })
}

/** A push refused because it would overwrite what was changed in the pod since the last one. */
export function podChangesError(instance: string, state: PodState, by: 'push' | 'sh' = 'push'): UserError {
  const lines = describeChanges(state)
  const name = instance === 'default' ? '' : ` --name ${instance}`
  const what = by === 'sh' ? 'the command did not run: pushing the local work tree' : 'the push'
  return new UserError(`${WORKSPACE_SRC} in the pod has changes made there since the last push, and ${what} would overwrite them:\n    ${lines.join('\n    ')}`, {
    hint: `See them with: trampoline diff${name}; bring them here with: trampoline pull${name}; ` +
      `or overwrite them: trampoline push-tarball${name} --worktree --force.`,
    exitCode: ExitCode.podChanges,
  })
}

/** push-receive.sh receive's command line. */
export function receiveArgv(request: { tree: string; commit?: string; from?: string; branch?: string; force?: boolean; identity?: { name?: string; email?: string } }): string[] {
  const argv = [PUSH_RECEIVE, 'receive', '--tree', request.tree, '--base', request.commit ?? '-', '--from', request.from ?? '-', '--branch', request.branch ?? 'trampoline']
  if (request.identity?.name) argv.push('--name', request.identity.name)
  if (request.identity?.email) argv.push('--email', request.identity.email)
  if (request.force) argv.push('--force')
  return argv
}
