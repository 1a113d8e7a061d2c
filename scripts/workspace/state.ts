// What `push-receive.sh state` reports about the pod's workspace, parsed; and the few
// decisions made from it (is there anything to send, what may the sender leave out, what
// changed in the pod). Pure, so it is unit-tested.
import { isTreeId } from '../workspace.ts'

/** One path the pod changed since the last push (git diff-tree --raw, no renames). */
export interface PodChange {
  /** A added, D deleted, M modified, T type changed (file <-> symlink). */
  status: string
  path: string
  /** Blob ids on either side; all zeros where the path does not exist. */
  before: string
  after: string
  beforeMode: string
  afterMode: string
}

export interface PodState {
  /** The tree of the last push (W), undefined before the first one. */
  pushed?: string
  /** refs/trampoline/pushed: a commit of W on base (base itself when W is its tree). */
  commit?: string
  /** The HEAD commit of the last push (B). */
  base?: string
  /** The pod's HEAD now: past base when an agent committed. */
  head?: string
  branch?: string
  /** The work tree as `git add -A` would stage it (P). */
  worktree?: string
  /** Commits on HEAD past base (1 also when HEAD moved elsewhere). */
  commits: number
  changes: PodChange[]
}

const id = (value: string | undefined) => (value && isTreeId(value) ? value : undefined)

/** Parse the state report: `key value` lines up to `changes`, then diff-tree -z records. */
export function parseState(output: Buffer | string): PodState {
  const text = Buffer.isBuffer(output) ? output.toString('utf8') : output
  const marker = text.indexOf('\nchanges\n')
  const head = marker < 0 ? text : text.slice(0, marker)
  const raw = marker < 0 ? '' : text.slice(marker + '\nchanges\n'.length)
  const fields = new Map<string, string>()
  for (const line of head.split('\n')) {
    const space = line.indexOf(' ')
    if (space > 0) fields.set(line.slice(0, space), line.slice(space + 1).trim())
  }
  if (!fields.has('pushed') || !fields.has('worktree')) {
    throw new Error(`unexpected workspace state from the pod: ${JSON.stringify(text.slice(0, 200))}`)
  }
  const branch = fields.get('branch')
  return {
    pushed: id(fields.get('pushed')),
    commit: id(fields.get('commit')),
    base: id(fields.get('base')),
    head: id(fields.get('head')),
    branch: branch && branch !== '-' ? branch : undefined,
    worktree: id(fields.get('worktree')),
    commits: Number(fields.get('commits') ?? 0) || 0,
    changes: parseRawDiff(raw),
  }
}

/** `git diff-tree -r -z` raw records: `:mode mode id id status\0path\0` each. */
export function parseRawDiff(raw: string): PodChange[] {
  const parts = raw.split('\0')
  const changes: PodChange[] = []
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const meta = parts[i].replace(/^\n+/, '')
    if (!meta.startsWith(':')) break
    const [beforeMode, afterMode, before, after, status] = meta.slice(1).split(' ')
    changes.push({ status: status.charAt(0), path: parts[i + 1], before, after, beforeMode, afterMode })
  }
  return changes
}

/** The pod has changes since the last push: files, or commits (or a moved HEAD). */
export function hasPodChanges(state: PodState): boolean {
  if (!state.pushed) return false
  return state.worktree !== state.pushed || state.commits > 0 || state.head !== state.base
}

/** The pod already has exactly this push, and nothing changed there. */
export function podHas(state: PodState, tree: string, commit: string | undefined): boolean {
  return state.pushed === tree && !hasPodChanges(state) && (commit === undefined || state.base === commit)
}

const WORDS: Record<string, string> = { A: 'added', D: 'deleted', M: 'modified', T: 'type changed' }

/** The changes as lines for a message: `modified  src/a.ts`, at most `limit` of them. */
export function describeChanges(state: PodState, limit = 20): string[] {
  const lines = state.changes.slice(0, limit).map((change) => `${(WORDS[change.status] ?? change.status).padEnd(12)} ${change.path}`)
  if (state.changes.length > limit) lines.push(`... and ${state.changes.length - limit} more`)
  if (state.commits > 0) {
    lines.push(state.head && state.base && state.commits ? `${state.commits} commit${state.commits === 1 ? '' : 's'} made in the pod (HEAD ${state.head.slice(0, 12)}, pushed ${state.base.slice(0, 12)})` : 'HEAD moved in the pod')
  }
  return lines
}
