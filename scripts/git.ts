// The local side of a push: which git tree to send, and the tar stream of it. Nothing here
// writes to the user's index or files: the work tree is snapshotted through a temporary
// index, so a push never disturbs what the user has staged.
import { spawn } from 'node:child_process'
import { copyFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { withCleanup } from './cleanup.ts'
import { ExitCode, UserError } from './errors.ts'

/** What to push: HEAD's tree, the work tree (uncommitted changes included), or HEAD if clean. */
export type PushMode = 'head' | 'worktree' | 'auto'

export interface PushSource {
  tree: string
  /** What the tree is: HEAD, or a snapshot of the work tree. */
  from: 'head' | 'worktree'
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
  if (mode === 'worktree') return { tree: await worktreeTree(root), from: 'worktree' }
  const head = await headTree(root)
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
  return { tree: head, from: 'head' }
}

/** Both local candidates for "what was pushed", for staleness warnings; never throws. */
export async function localTrees(root: string): Promise<string[]> {
  const trees = await Promise.all([headTree(root).catch(() => undefined), worktreeTree(root).catch(() => undefined)])
  return trees.filter((tree): tree is string => !!tree)
}

export interface GitArchive {
  /** The tar stream; read it as it comes, it is never held in memory. */
  stream: Readable
  /** Settles when git exits: rejects with git's message if it failed. */
  done: Promise<void>
  kill(): void
}

/** `git archive` of a tree as a tar stream. */
export function archiveTree(root: string, tree: string): GitArchive {
  const child = spawn('git', ['archive', '--format=tar', tree], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const done = new Promise<void>((resolveDone, fail) => {
    child.on('error', (error) => fail(gitSpawnError(error)))
    child.on('close', (code, signal) => {
      if (code === 0) resolveDone()
      else fail(new UserError(`git archive failed: ${stderr.trim() || (signal ? `killed by ${signal}` : `exit ${code}`)}`, { exitCode: ExitCode.local }))
    })
  })
  // Callers await `done` after the stream; until then a failure must not count as unhandled.
  done.catch(() => {})
  return {
    stream: child.stdout,
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill()
    },
  }
}
