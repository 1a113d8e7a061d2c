// Where pushed sources and build results live inside the pod (the CLAUDE.md contract), and
// how a local directory maps onto the pushed copy. Pure, so it is unit-tested.
import { isAbsolute, relative, sep } from 'node:path'
import { WORKSPACE_SRC } from './pod/contract.ts'

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
