// Where pushed sources and build results live inside the pod (the CLAUDE.md contract), and
// how a local directory maps onto the pushed copy. Pure, so it is unit-tested.
import { isAbsolute, relative, sep } from 'node:path'

/**
 * The pushed project: a git work tree at this fixed path (Claude Code keys trust and
 * per-project settings on it), HEAD the pushed commit, refs/trampoline/pushed the pushed
 * tree; push-receive.sh updates it in place.
 */
export const WORKSPACE_SRC = '/workspace/src'
/** push-receive.sh's own files: the push lock, the switch journal, `pushed`. */
export const TREES_DIR = '/workspace/.trees'
/** receive (a git pack on stdin), state, adopt: the pod's side of push, diff and pull. */
export const PUSH_RECEIVE = '/opt/trampoline/push-receive.sh'
/** Build results are symlinked here; the directory belongs to the user container's UID. */
export const GC_ROOTS_DIR = '/nix/var/nix/gcroots/trampoline'

/** Local state file holding the tree id (and HEAD commit) of the last successful push. */
export const LAST_PUSH_FILE = 'last-push'

/** Git object ids: SHA-1 (40 hex) or SHA-256 (64 hex). Anything else never reaches a shell. */
export function isTreeId(text: string): boolean {
  return /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(text)
}

/**
 * The pod directory matching a local one: the same path relative to the repository, under
 * WORKSPACE_SRC. Undefined when `cwd` is outside the repository (the pod has nothing there).
 */
export function remoteCwd(repoRoot: string, cwd: string): string | undefined {
  const rel = relative(repoRoot, cwd)
  if (rel === '') return WORKSPACE_SRC
  if (isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`)) return undefined
  return `${WORKSPACE_SRC}/${rel.split(sep).join('/')}`
}
