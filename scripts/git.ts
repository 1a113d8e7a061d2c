// The local side of a push: which git tree to send, and the pack of what the pod lacks. Nothing here
// writes to the user's index or files: the work tree is snapshotted through a temporary
// index, so a push never disturbs what the user has staged.
//
// Submodules: a tree records a submodule as a commit link, not its files, so a tree with
// submodules is pushed as a combined tree, each submodule's tree (at its recorded commit,
// or its work tree with --worktree) read in at its path, recursively. The combined trees
// are written into a private object directory of this process (the submodules' objects
// reached as alternates), never into the user's repositories; their ids are still content
// ids, so "the pod already has this tree" keeps working.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { withCleanup } from './cleanup.ts'
import { ExitCode, UserError } from './errors.ts'
import { debug, warn } from './log.ts'

/** The top of the git work tree containing `cwd`, or undefined outside one. */
export function findRepoRoot(cwd = process.cwd()): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return undefined
  }
}

/** What to push: HEAD's tree, the work tree (uncommitted changes included), or HEAD if clean. */
export type PushMode = 'head' | 'worktree' | 'auto'

export interface PushSource {
  tree: string
  /** What the tree is: HEAD, or a snapshot of the work tree. */
  from: 'head' | 'worktree'
  /** HEAD's commit (the pod's HEAD after the push); undefined in a repository without commits. */
  commit?: string
  /** Submodules read into the tree (paths from the repository root, nested ones too). */
  submodules?: string[]
}

interface GitResult {
  code: number
  stdout: string
  stderr: string
}

/** Run git with small, bounded output; never throws for a non-zero exit. */
export function git(cwd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<GitResult> {
  return new Promise((done, fail) => {
    const child = spawn('git', args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', (error) => fail(gitSpawnError(error)))
    child.on('close', (code) => done({ code: code ?? 128, stdout, stderr }))
  })
}

/** git with binary stdout (cat-file --batch); never throws for a non-zero exit. */
function gitBuffer(cwd: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<{ code: number; stdout: Buffer }> {
  return new Promise((done, fail) => {
    const child = spawn('git', args, { cwd, env, stdio: ['pipe', 'pipe', 'ignore'] })
    const chunks: Buffer[] = []
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk))
    child.on('error', (error) => fail(gitSpawnError(error)))
    child.on('close', (code) => done({ code: code ?? 128, stdout: Buffer.concat(chunks) }))
    child.stdin.on('error', () => {})
    child.stdin.end(input)
  })
}

function gitSpawnError(error: NodeJS.ErrnoException): Error {
  if (error.code !== 'ENOENT') return error
  return new UserError('git is not installed (or not on PATH)', {
    hint: 'Install git: trampoline pushes the project as a git tree.',
    exitCode: ExitCode.local,
    cause: error,
  })
}

async function gitOk(cwd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await git(cwd, args, env)
  if (result.code !== 0) {
    throw new UserError(`git ${args[0]} failed: ${result.stderr.trim() || `exit ${result.code}`}`, { exitCode: ExitCode.local })
  }
  return result.stdout.trim()
}

/** The repository root, or a UserError when the command is not run inside one. */
export function requireRepo(repoRoot: string | undefined): string {
  if (repoRoot) return repoRoot
  throw new UserError(`${process.cwd()} is not inside a git repository`, {
    hint: 'Run trampoline from your project\'s work tree (or start one: git init && git add -A && git commit).',
    exitCode: ExitCode.local,
  })
}

/** HEAD's commit id, or undefined when the repository has no commits yet. */
export async function headCommit(root: string): Promise<string | undefined> {
  const result = await git(root, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'])
  return result.code === 0 ? result.stdout.trim() : undefined
}

/** The checked-out branch's short name; undefined on a detached HEAD. */
export async function currentBranch(root: string): Promise<string | undefined> {
  const result = await git(root, ['symbolic-ref', '--quiet', '--short', 'HEAD'])
  return result.code === 0 && result.stdout.trim() ? result.stdout.trim() : undefined
}

/** user.name and user.email as git would use them here (either may be unset). */
export async function gitIdentity(root: string): Promise<{ name?: string; email?: string }> {
  // One git run for both (`key value` lines; the last of a key wins, as for --get).
  const result = await git(root, ['config', '-z', '--get-regexp', '^user\\.(name|email)$'])
  const found: { name?: string; email?: string } = {}
  for (const entry of result.code === 0 ? result.stdout.split('\0') : []) {
    const eol = entry.indexOf('\n')
    const key = eol < 0 ? entry : entry.slice(0, eol)
    const value = eol < 0 ? '' : entry.slice(eol + 1).trim()
    if (key === 'user.name' || key === 'user.email') {
      const field = key === 'user.name' ? 'name' : 'email'
      if (value) found[field] = value
      else delete found[field]
    }
  }
  return found
}

/** HEAD's tree id, or undefined when the repository has no commits yet. */
export async function headTree(root: string): Promise<string | undefined> {
  const result = await git(root, ['rev-parse', '--verify', '--quiet', 'HEAD^{tree}'])
  return result.code === 0 ? result.stdout.trim() : undefined
}

/**
 * Whether the work tree differs from HEAD (staged, unstaged or untracked, ignoring
 * .gitignore'd files). --no-optional-locks keeps status from rewriting the user's index,
 * and we stop at the first line: a huge change list costs no more than a small one.
 */
export function hasUncommittedChanges(root: string): Promise<boolean> {
  return new Promise((done, fail) => {
    const child = spawn('git', ['--no-optional-locks', 'status', '--porcelain', '-z'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let changed = false
    let stderr = ''
    child.stdout.once('data', () => {
      changed = true
      child.kill()
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', (error) => fail(gitSpawnError(error)))
    child.on('close', (code) => {
      if (changed) done(true)
      else if (code === 0) done(false)
      else fail(new UserError(`git status failed: ${stderr.trim() || `exit ${code}`}`, { exitCode: ExitCode.local }))
    })
  })
}

/**
 * The tree id of the work tree as `git add -A` would stage it, computed in a copy of the
 * index (GIT_INDEX_FILE): the copy keeps git's stat cache, so only changed files are hashed.
 * The copy is removed afterwards, and on interruption.
 */
export async function worktreeTree(root: string): Promise<string> {
  const indexPath = resolve(root, await gitOk(root, ['rev-parse', '--git-path', 'index']))
  const dir = await mkdtemp(join(tmpdir(), 'trampoline-index-'))
  const remove = () => rm(dir, { recursive: true, force: true })
  return withCleanup(remove, async () => {
    const tempIndex = join(dir, 'index')
    // No index yet (fresh `git init`): git add starts an empty one.
    await copyFile(indexPath, tempIndex).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error
    })
    const env = { ...process.env, GIT_INDEX_FILE: tempIndex }
    await gitOk(root, ['add', '--all', '--', ':/'], env)
    return gitOk(root, ['write-tree'], env)
  })
}

/** Decide what a push sends, refusing to silently leave uncommitted work behind. */
export async function pushSource(root: string, mode: PushMode): Promise<PushSource> {
  const source = await pushSourceOf(root, mode)
  const expanded = await withSubmodules(root, source.tree, source.from)
  return expanded.submodules.length ? { ...source, ...expanded } : source
}

async function pushSourceOf(root: string, mode: PushMode): Promise<PushSource> {
  if (mode === 'worktree') {
    const [tree, commit] = await Promise.all([worktreeTree(root), headCommit(root)])
    return commit ? { tree, from: 'worktree', commit } : { tree, from: 'worktree' }
  }
  const [head, commit] = await Promise.all([headTree(root), headCommit(root)])
  if (!head) {
    throw new UserError('the repository has no commits yet, so there is no HEAD to push', {
      hint: 'Commit something first, or pass --worktree to push the work tree as it is.',
      exitCode: ExitCode.local,
    })
  }
  if (mode === 'auto' && (await hasUncommittedChanges(root))) {
    throw new UserError('the work tree has uncommitted changes, which a push of HEAD would leave out', {
      hint: 'Commit them, pass --worktree to push the work tree, or --head to push HEAD only.',
      exitCode: ExitCode.local,
    })
  }
  return commit ? { tree: head, from: 'head', commit } : { tree: head, from: 'head' }
}

/** Both local candidates for "what was pushed" (submodules read in), for staleness warnings; never throws. */
export async function localTrees(root: string): Promise<string[]> {
  const expand = (tree: string | undefined, from: PushSource['from']) =>
    tree ? withSubmodules(root, tree, from).then((expanded) => expanded.tree) : undefined
  const trees = await Promise.all([
    headTree(root).then((tree) => expand(tree, 'head')).catch(() => undefined),
    worktreeTree(root).then((tree) => expand(tree, 'worktree')).catch(() => undefined),
  ])
  return trees.filter((tree): tree is string => !!tree)
}

// --- submodules -----------------------------------------------------------------------

/** A submodule entry of a tree: mode 160000, the commit it records. */
export interface Gitlink {
  path: string
  commit: string
}

/** The gitlinks anywhere in a tree (`git ls-tree -r`: they are its only "commit" entries). */
export async function gitlinks(dir: string, tree: string, env?: NodeJS.ProcessEnv): Promise<Gitlink[]> {
  const listed = await gitListing(dir, tree, [], env)
  const links: Gitlink[] = []
  for (const entry of listed.split('\0')) {
    const tab = entry.indexOf('\t')
    if (tab < 0) continue
    const [mode, type, id] = entry.slice(0, tab).split(' ')
    if (mode === '160000' && type === 'commit') links.push({ path: entry.slice(tab + 1), commit: id })
  }
  return links
}

/** `git ls-tree -r -z` output as it is (paths may end in spaces: nothing trimmed). */
async function gitListing(dir: string, tree: string, options: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await git(dir, ['ls-tree', '-r', '-z', ...options, tree], env)
  if (result.code !== 0) throw new UserError(`git ls-tree failed: ${result.stderr.trim() || `exit ${result.code}`}`, { exitCode: ExitCode.local })
  return result.stdout
}

/** A tree with its submodules resolved, before combining. */
interface TreeNode {
  tree: string
  /** The repository's object directory (its alternates reach everything this tree names). */
  objects: string
  children: { path: string; node: TreeNode }[]
}

async function objectDirectory(dir: string): Promise<string> {
  return resolve(dir, await gitOk(dir, ['rev-parse', '--git-path', 'objects']))
}

/** The submodule's own work tree, or a UserError naming it when it is not checked out here. */
async function checkedOutSubmodule(dir: string, shown: string): Promise<string> {
  const notCheckedOut = () =>
    new UserError(`submodule "${shown}" is not checked out here, so its files cannot be pushed (the pod would get an empty directory)`, {
      hint: 'Run: git submodule update --init --recursive  (or remove the submodule from the tree).',
      exitCode: ExitCode.local,
    })
  if (!existsSync(dir)) throw notCheckedOut()
  const top = await git(dir, ['rev-parse', '--show-toplevel'])
  if (top.code !== 0 || realpathSync(top.stdout.trim()) !== realpathSync(dir)) throw notCheckedOut()
  return dir
}

async function submoduleTree(dir: string, link: Gitlink, from: PushSource['from'], shown: string): Promise<string> {
  if (from === 'worktree') return worktreeTree(dir)
  const result = await git(dir, ['rev-parse', '--verify', '--quiet', `${link.commit}^{tree}`])
  if (result.code !== 0) {
    throw new UserError(`submodule "${shown}" records commit ${link.commit.slice(0, 12)}, which its clone here does not have`, {
      hint: 'Run: git submodule update --init --recursive  (it fetches the recorded commits).',
      exitCode: ExitCode.local,
    })
  }
  return result.stdout.trim()
}

async function resolveSubmodules(dir: string, tree: string, from: PushSource['from'], prefix: string, found: string[], links?: Gitlink[]): Promise<TreeNode> {
  const node: TreeNode = { tree, objects: await objectDirectory(dir), children: [] }
  for (const link of links ?? (await gitlinks(dir, tree))) {
    const shown = `${prefix}${link.path}`
    const subdir = await checkedOutSubmodule(join(dir, link.path), shown)
    const subtree = await submoduleTree(subdir, link, from, shown)
    found.push(shown)
    node.children.push({ path: link.path, node: await resolveSubmodules(subdir, subtree, from, `${shown}/`, found) })
  }
  return node
}

function allObjectDirectories(node: TreeNode): string[] {
  return [node.objects, ...node.children.flatMap((child) => allObjectDirectories(child.node))]
}

/** This process's private object directory for combined trees; removed when the process exits. */
let scratch: string | undefined
/** Combined trees made here, and the environment that reaches their objects. */
const combinedTrees = new Map<string, NodeJS.ProcessEnv>()

function scratchDirectory(): string {
  if (!scratch) {
    const dir = mkdtempSync(join(tmpdir(), 'trampoline-objects-'))
    scratch = dir
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  }
  return scratch
}

/** An object directory of our own whose alternates are the given repositories' objects. */
function objectEnv(objectDirs: string[]): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(scratchDirectory(), 'odb-'))
  const objects = join(dir, 'objects')
  mkdirSync(join(objects, 'info'), { recursive: true })
  writeFileSync(join(objects, 'info', 'alternates'), `${[...new Set(objectDirs)].join('\n')}\n`)
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_OBJECT_DIRECTORY: objects, GIT_INDEX_FILE: join(dir, 'index') }
  delete env.GIT_ALTERNATE_OBJECT_DIRECTORIES
  return env
}

/** Write the tree with each gitlink replaced by its submodule's (combined) tree, bottom up. */
async function combine(root: string, node: TreeNode, env: NodeJS.ProcessEnv): Promise<string> {
  if (!node.children.length) return node.tree
  const subtrees: string[] = []
  for (const child of node.children) subtrees.push(await combine(root, child.node, env))
  await gitOk(root, ['read-tree', node.tree], env)
  await gitOk(root, ['update-index', '--force-remove', '--', ...node.children.map((child) => child.path)], env)
  for (const [i, child] of node.children.entries()) await gitOk(root, ['read-tree', `--prefix=${child.path}/`, subtrees[i]], env)
  return gitOk(root, ['write-tree'], env)
}

/**
 * The tree to push for `tree`: itself when it has no submodules, else the combined tree
 * (submodules at their recorded commits, or their work trees for a work-tree push).
 * Refuses, naming it, a submodule that is not checked out or lacks its recorded commit.
 */
export async function withSubmodules(root: string, tree: string, from: PushSource['from']): Promise<{ tree: string; submodules: string[] }> {
  // The common case, no submodules, costs one listing.
  const links = await gitlinks(root, tree)
  if (!links.length) return { tree, submodules: [] }
  const found: string[] = []
  const node = await resolveSubmodules(root, tree, from, '', found, links)
  const env = objectEnv(allObjectDirectories(node))
  const combined = await combine(root, node, env)
  combinedTrees.set(combined, env)
  debug(`tree ${combined} = ${tree} with submodules ${found.join(', ')}`)
  return { tree: combined, submodules: found }
}

// --- Git LFS --------------------------------------------------------------------------

/** A Git LFS pointer file's first line (the spec's URL, or the pre-1.0 one). */
const LFS_POINTER = /^version https:\/\/(git-lfs\.github\.com|hawser\.github\.com)\/spec\/v1\n/
/** Pointer files are small: the spec keeps them under 1024 bytes. */
const LFS_POINTER_MAX = 1024

/** `git cat-file --batch` output, parsed: object id -> content. */
export function parseCatFileBatch(output: Buffer): Map<string, Buffer> {
  const objects = new Map<string, Buffer>()
  let at = 0
  while (at < output.length) {
    const eol = output.indexOf(0x0a, at)
    if (eol < 0) break
    const [id, type, size] = output.subarray(at, eol).toString('utf8').split(' ')
    if (type === 'missing' || size === undefined) {
      at = eol + 1
      continue
    }
    const length = Number(size)
    objects.set(id, output.subarray(eol + 1, eol + 1 + length))
    at = eol + 1 + length + 1
  }
  return objects
}

/**
 * Git LFS pointer files in a tree: a push sends them as they are (the objects hold no LFS
 * content). Only looked for when some .gitattributes in the tree mentions filter=lfs, so
 * a repository without LFS costs one listing.
 */
export async function lfsPointers(root: string, tree: string, env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const listed = await gitListing(root, tree, ['-l'], env)
  const blobs: { path: string; id: string; size: number }[] = []
  for (const entry of listed.split('\0')) {
    const tab = entry.indexOf('\t')
    if (tab < 0) continue
    const [, type, id, size] = entry.slice(0, tab).split(/ +/)
    if (type === 'blob') blobs.push({ path: entry.slice(tab + 1), id, size: Number(size) })
  }
  const read = async (ids: string[]) => {
    if (!ids.length) return new Map<string, Buffer>()
    const result = await gitBuffer(root, ['cat-file', '--batch'], env, `${[...new Set(ids)].join('\n')}\n`)
    return result.code === 0 ? parseCatFileBatch(result.stdout) : new Map<string, Buffer>()
  }
  const attributes = await read(blobs.filter((blob) => /(^|\/)\.gitattributes$/.test(blob.path)).map((blob) => blob.id))
  if (![...attributes.values()].some((content) => /filter=lfs/.test(content.toString('utf8')))) return []
  const candidates = blobs.filter((blob) => blob.size > 0 && blob.size < LFS_POINTER_MAX)
  const contents = await read(candidates.map((blob) => blob.id))
  return candidates.filter((blob) => LFS_POINTER.test(contents.get(blob.id)?.toString('utf8') ?? '')).map((blob) => blob.path)
}

/** Warn, naming them, about LFS pointer files going out as they are; never fails the push. */
export async function warnAboutLfs(root: string, tree: string, env: NodeJS.ProcessEnv = treeEnv(tree)): Promise<void> {
  try {
    const pointers = await lfsPointers(root, tree, env)
    if (!pointers.length) return
    const shown = pointers.slice(0, 10).join(', ') + (pointers.length > 10 ? ` (and ${pointers.length - 10} more)` : '')
    warn(`pushing ${pointers.length} Git LFS pointer file${pointers.length === 1 ? '' : 's'} as they are, not their content: ${shown}. ` +
      'A push sends git objects, which hold no LFS content, and the pod does not fetch it: a build that reads these files sees the pointers.')
  } catch (error) {
    debug(`looking for Git LFS pointers failed: ${(error as Error).message}`)
  }
}

// --- packs: the objects a push sends ---------------------------------------------------

/** The object environment of a tree: the private one of a combined (submodule) tree. */
export function treeEnv(tree: string): NodeJS.ProcessEnv {
  return combinedTrees.get(tree) ?? process.env
}

/** Which of `ids` this repository has (as any type); the rest are unknown here. */
export async function presentObjects(root: string, ids: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const wanted = [...new Set(ids)]
  if (!wanted.length) return []
  const result = await gitBuffer(root, ['cat-file', '--batch-check=%(objectname)'], env, `${wanted.join('\n')}\n`)
  if (result.code !== 0) return []
  const found = new Set(result.stdout.toString('utf8').split('\n').filter((line) => /^[0-9a-f]+$/.test(line)))
  return wanted.filter((id) => found.has(id))
}

export interface PackRequest {
  /** Trees whose objects are sent (the pushed tree, the base commit's tree). */
  trees: string[]
  /** Single commit objects sent as they are (shallow: no parents, no history). */
  commits: string[]
  /** Trees the receiver has: their objects are left out. Must exist here. */
  exclude: string[]
}

/** rev-list's arguments for the objects of a pack request. */
export function revListArgs(request: PackRequest): string[] {
  const args = ['rev-list', '--objects', ...new Set(request.trees)]
  const exclude = [...new Set(request.exclude)]
  return exclude.length ? [...args, '--not', ...exclude] : args
}

export interface GitPack {
  /** The pack (git pack-objects --stdout), streamed. */
  stream: Readable
  /** Settles when git exits: rejects with git's message if it failed. */
  done: Promise<void>
  /** How many objects the pack holds. */
  objects: number
  kill(): void
}

/** A pack (packList) of the objects of `request` (trees walked, commits alone), without what the receiver already has. */
export async function packObjects(root: string, request: PackRequest, env: NodeJS.ProcessEnv = process.env): Promise<GitPack> {
  const listed = await gitBuffer(root, revListArgs(request), env, '')
  if (listed.code !== 0) throw new UserError(`git rev-list failed for ${request.trees.join(' ')}`, { exitCode: ExitCode.local })
  const lines = listed.stdout.toString('utf8').split('\n').filter(Boolean)
  return packList(root, [...lines, ...request.commits], env)
}

/**
 * The objects `tree` has and `from` lacks, found by comparing the two trees: time grows
 * with the difference, where rev-list --not walks every tree of `from`. An object that moved
 * (in `from` under another path) is listed again: the pack only grows by it. Undefined when
 * `from` is not in this repository. Submodule commits are not objects of this repository.
 */
export async function changedObjects(root: string, from: string, tree: string, env: NodeJS.ProcessEnv = process.env): Promise<string[] | undefined> {
  if (from === tree) return []
  const result = await gitBuffer(root, ['diff-tree', '-r', '-t', '-z', '--no-renames', from, tree], env, '')
  if (result.code !== 0) return undefined
  const ids = [tree]
  const fields = result.stdout.toString('utf8').split('\0')
  // Records: ":<mode> <mode> <id> <id> <status>", then the path.
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const [, mode, , id] = fields[i].split(' ')
    if (mode !== '160000' && id && !/^0+$/.test(id)) ids.push(id)
  }
  return ids
}

/**
 * A pack of exactly these objects (ids, or rev-list's `id path` lines), each once. No delta
 * search (--window=0: speed over size; deltas already in local packs are reused) and light
 * compression: the pod's disk and the channel are fast, the laptop's CPU is what shows.
 */
export function packList(root: string, objects: string[], env: NodeJS.ProcessEnv = process.env): GitPack {
  const lines: string[] = []
  const seen = new Set<string>()
  for (const line of objects) {
    const id = line.slice(0, line.indexOf(' ') < 0 ? undefined : line.indexOf(' '))
    if (!seen.has(id)) lines.push(line)
    seen.add(id)
  }
  const child = spawn('git', ['-c', 'pack.compression=1', 'pack-objects', '--stdout', '-q', '--window=0', '--delta-base-offset'], {
    cwd: root,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  child.stdin.on('error', () => {})
  child.stdin.end(lines.length ? `${lines.join('\n')}\n` : '')
  const done = new Promise<void>((resolveDone, fail) => {
    child.on('error', (error) => fail(gitSpawnError(error)))
    child.on('close', (code, signal) => {
      if (code === 0) resolveDone()
      else fail(new UserError(`git pack-objects failed: ${stderr.trim() || (signal ? `killed by ${signal}` : `exit ${code}`)}`, { exitCode: ExitCode.local }))
    })
  })
  done.catch(() => {})
  return {
    stream: child.stdout,
    done,
    objects: lines.length,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill()
    },
  }
}
