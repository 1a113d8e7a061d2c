// Where pushed sources and build results live inside the pod (the CLAUDE.md contract), and
// how a local directory maps onto the pushed copy. Pure, so it is unit-tested.
import { isAbsolute, relative, sep } from 'node:path'

/** A symlink to the current tree under TREES_DIR, swapped atomically by push-receive.sh. */
export const WORKSPACE_SRC = '/workspace/src'
export const TREES_DIR = '/workspace/.trees'
/** Reads a tar on stdin, extracts it as the given tree and points WORKSPACE_SRC at it. */
export const PUSH_RECEIVE = '/opt/trampoline/push-receive.sh'
/** Build results are symlinked here; the directory belongs to the user container's UID. */
export const GC_ROOTS_DIR = '/nix/var/nix/gcroots/trampoline'

/** Local state file holding the tree id of the last successful push. */
export const LAST_PUSH_FILE = 'last-push'

export function treeDir(tree: string): string {
  return `${TREES_DIR}/${tree}`
}

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
