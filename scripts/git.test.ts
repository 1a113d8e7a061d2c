import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { archiveTree, hasUncommittedChanges, headTree, localTrees, pushSource, requireRepo, worktreeTree } from './git.ts'
import { ExitCode, UserError } from './errors.ts'

// A real repository in a temporary directory: these are the git behaviours push relies on.
let repo: string
const run = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim()

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), 'trampoline-git-test-'))
  run('init', '--quiet')
  run('config', 'user.email', 'test@example.com')
  run('config', 'user.name', 'Test')
  run('config', 'commit.gpgsign', 'false')
})

afterEach(() => rmSync(repo, { recursive: true, force: true }))

function commitFiles(files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) writeFileSync(join(repo, name), content)
  run('add', '-A')
  run('commit', '--quiet', '-m', 'test')
}

function listArchive(tree: string): Promise<string[]> {
  const archive = archiveTree(repo, tree)
  const chunks: Buffer[] = []
  archive.stream.on('data', (chunk: Buffer) => chunks.push(chunk))
  return archive.done.then(() =>
    execFileSync('tar', ['-t'], { input: Buffer.concat(chunks), encoding: 'utf8' }).split('\n').filter(Boolean).sort(),
  )
}

describe('requireRepo', () => {
  it('explains what to do outside a repository', () => {
    expect(requireRepo('/some/repo')).toBe('/some/repo')
    try {
      requireRepo(undefined)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(UserError)
      expect((error as UserError).exitCode).toBe(ExitCode.local)
      expect((error as UserError).message).toMatch(/not inside a git repository/)
      expect((error as UserError).hint).toMatch(/git init/)
    }
  })
})

describe('a repository without commits', () => {
  it('has no HEAD tree, and only --worktree can push it', async () => {
    writeFileSync(join(repo, 'a.txt'), 'a\n')
    expect(await headTree(repo)).toBeUndefined()
    await expect(pushSource(repo, 'auto')).rejects.toThrow(/no commits yet/)
    await expect(pushSource(repo, 'head')).rejects.toThrow(/no commits yet/)
    const source = await pushSource(repo, 'worktree')
    expect(source.from).toBe('worktree')
    expect(await listArchive(source.tree)).toEqual(['a.txt'])
  })

  it('leaves the index alone (there still is none)', async () => {
    writeFileSync(join(repo, 'a.txt'), 'a\n')
    await worktreeTree(repo)
    expect(existsSync(join(repo, '.git', 'index'))).toBe(false)
  })
})

describe('a clean repository', () => {
  beforeEach(() => commitFiles({ 'a.txt': 'a\n', '.gitignore': 'ignored/\n' }))

  it('pushes HEAD, and the work-tree tree is the same tree', async () => {
    const head = run('rev-parse', 'HEAD^{tree}')
    expect(await headTree(repo)).toBe(head)
    expect(await hasUncommittedChanges(repo)).toBe(false)
    expect(await pushSource(repo, 'auto')).toEqual({ tree: head, from: 'head' })
    expect(await worktreeTree(repo)).toBe(head)
    expect(await localTrees(repo)).toEqual([head, head])
  })

  it('does not count ignored files as changes', async () => {
    mkdirSync(join(repo, 'ignored'))
    writeFileSync(join(repo, 'ignored', 'big.bin'), 'x')
    expect(await hasUncommittedChanges(repo)).toBe(false)
    expect(await worktreeTree(repo)).toBe(run('rev-parse', 'HEAD^{tree}'))
  })

  it('archives a tree as tar', async () => {
    expect(await listArchive(run('rev-parse', 'HEAD^{tree}'))).toEqual(['.gitignore', 'a.txt'])
  })

  it('reports a bad tree from git archive', async () => {
    const archive = archiveTree(repo, '0'.repeat(40))
    archive.stream.resume()
    await expect(archive.done).rejects.toThrow(/git archive failed/)
  })
})

describe('a dirty work tree', () => {
  beforeEach(() => commitFiles({ 'a.txt': 'a\n' }))

  it('refuses a plain push, naming the three ways out', async () => {
    writeFileSync(join(repo, 'a.txt'), 'changed\n')
    expect(await hasUncommittedChanges(repo)).toBe(true)
    const error = (await pushSource(repo, 'auto').catch((e: unknown) => e)) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.message).toMatch(/uncommitted changes/)
    expect(error.hint).toMatch(/commit them/i)
    expect(error.hint).toMatch(/--worktree/)
    expect(error.hint).toMatch(/--head/)
    expect(error.exitCode).toBe(ExitCode.local)
  })

  it('counts untracked files as changes and includes them with --worktree', async () => {
    writeFileSync(join(repo, 'new.txt'), 'new\n')
    expect(await hasUncommittedChanges(repo)).toBe(true)
    const source = await pushSource(repo, 'worktree')
    expect(source.tree).not.toBe(run('rev-parse', 'HEAD^{tree}'))
    expect(await listArchive(source.tree)).toEqual(['a.txt', 'new.txt'])
  })

  it('--head pushes HEAD regardless', async () => {
    writeFileSync(join(repo, 'a.txt'), 'changed\n')
    expect(await pushSource(repo, 'head')).toEqual({ tree: run('rev-parse', 'HEAD^{tree}'), from: 'head' })
  })

  it('snapshots the work tree without touching the index or leaving temp files', async () => {
    writeFileSync(join(repo, 'a.txt'), 'staged\n')
    run('add', 'a.txt')
    writeFileSync(join(repo, 'a.txt'), 'unstaged\n')
    writeFileSync(join(repo, 'untracked.txt'), 'u\n')
    const indexBefore = readFileSync(join(repo, '.git', 'index'))
    const mtimeBefore = statSync(join(repo, '.git', 'index')).mtimeMs
    const tempsBefore = readdirSync(tmpdir()).filter((f) => f.startsWith('trampoline-index-')).length

    const tree = await worktreeTree(repo)

    expect(readFileSync(join(repo, '.git', 'index')).equals(indexBefore)).toBe(true)
    expect(statSync(join(repo, '.git', 'index')).mtimeMs).toBe(mtimeBefore)
    expect(run('status', '--porcelain')).toBe('MM a.txt\n?? untracked.txt'.trim())
    expect(run('show', `${tree}:a.txt`)).toBe('unstaged')
    expect(run('show', `${tree}:untracked.txt`)).toBe('u')
    expect(readdirSync(tmpdir()).filter((f) => f.startsWith('trampoline-index-')).length).toBe(tempsBefore)
  })

  it('gives the same id for the same content, so unchanged trees are cheap to detect', async () => {
    writeFileSync(join(repo, 'a.txt'), 'changed\n')
    const first = await worktreeTree(repo)
    expect(await worktreeTree(repo)).toBe(first)
    writeFileSync(join(repo, 'a.txt'), 'changed again\n')
    expect(await worktreeTree(repo)).not.toBe(first)
  })
})
