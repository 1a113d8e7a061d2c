// Deciding what `trampoline pull` may do with the local work tree: pure, so unit-tested.
// A pod change applies only where the local file is still what was pushed (or already is
// what the pod has): anything else is a conflict, reported by path, and nothing is written.
import type { PodChange } from './state.ts'

const ZERO = /^0+$/

/** A local tree entry (git ls-tree -r -z): mode and blob id by path. */
export interface TreeEntry {
  mode: string
  id: string
}

/** Parse `git ls-tree -r -z` output into entries by path (gitlinks and all). */
export function parseLsTree(output: string): Map<string, TreeEntry> {
  const entries = new Map<string, TreeEntry>()
  for (const record of output.split('\0')) {
    const tab = record.indexOf('\t')
    if (tab < 0) continue
    const [mode, , id] = record.slice(0, tab).split(' ')
    entries.set(record.slice(tab + 1), { mode, id })
  }
  return entries
}

export interface PullPlan {
  /** Paths to patch (local still as pushed). */
  apply: PodChange[]
  /** Paths already as the pod has them locally: nothing to do. */
  same: PodChange[]
  /** Paths changed locally since the push, differently from the pod: never overwritten. */
  conflicts: PodChange[]
}

const matches = (entry: TreeEntry | undefined, mode: string, id: string) =>
  ZERO.test(id) ? entry === undefined : entry !== undefined && entry.id === id && entry.mode === mode

/** Sort the pod's changes by what the local work tree (a snapshot tree's entries) holds. */
export function planPull(changes: PodChange[], local: Map<string, TreeEntry>): PullPlan {
  const plan: PullPlan = { apply: [], same: [], conflicts: [] }
  for (const change of changes) {
    const entry = local.get(change.path)
    if (matches(entry, change.beforeMode, change.before)) plan.apply.push(change)
    else if (matches(entry, change.afterMode, change.after)) plan.same.push(change)
    else plan.conflicts.push(change)
  }
  return plan
}

/** Where the pod's commits go: onto the local branch (fast-forward) or a branch of their own. */
export function commitsTarget(localHead: string | undefined, podBase: string | undefined, instance: string): { fastForward: true } | { fastForward: false; branch: string } {
  if (localHead && podBase && localHead === podBase) return { fastForward: true }
  return { fastForward: false, branch: `trampoline/${instance}` }
}
