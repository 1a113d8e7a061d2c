// The local record of the last push (`last-push` in the instance's state dir): what the
// pod was left with. Kept apart from pod/push.ts so the sh adapter's no-change path can read it
// without loading the push (and client-node) at all.
import type { InstanceState } from '../state.ts'
import { LAST_PUSH_FILE, isTreeId } from '../workspace.ts'

/** What the last successful push left in the pod: the tree, and HEAD's commit. */
export interface PushRecord {
  tree: string
  commit?: string
}

/** The local record of the last push: `<tree> [<commit>]` (older versions wrote the tree only). */
export function parseRecord(text: string | undefined): PushRecord | undefined {
  const [tree, commit] = (text ?? '').trim().split(/\s+/)
  if (!tree || !isTreeId(tree)) return undefined
  return commit && isTreeId(commit) ? { tree, commit } : { tree }
}

export function lastPushed(state: InstanceState): PushRecord | undefined {
  return parseRecord(state.read(LAST_PUSH_FILE))
}

export function recordPush(state: InstanceState, record: PushRecord): void {
  state.write(LAST_PUSH_FILE, `${record.tree}${record.commit ? ` ${record.commit}` : ''}\n`)
}
