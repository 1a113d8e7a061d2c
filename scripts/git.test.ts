import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { changedObjects, currentBranch, gitIdentity, headCommit, packList, packObjects, presentObjects, revListArgs, hasUncommittedChanges, headTree, lfsPointers, localTrees, parseCatFileBatch, pushSource, requireRepo, treeEnv, warnAboutLfs, worktreeTree } from './git.ts'
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

/** The tree as git sees it, with the index a combined (submodule) tree was made in. */
function gitArchive(tree: string): Buffer {
  return execFileSync('git', ['archive', '--format=tar', tree], { cwd: repo, env: treeEnv(tree), maxBuffer: 64 << 20 })
}

async function listArchive(tree: string): Promise<string[]> {
  return execFileSync('tar', ['-t'], { input: gitArchive(tree), encoding: 'utf8' }).split('\n').filter(Boolean).sort()
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
    expect(await pushSource(repo, 'auto')).toEqual({ tree: head, from: 'head', commit: run('rev-parse', 'HEAD') })
    expect(await worktreeTree(repo)).toBe(head)
    expect(await localTrees(repo)).toEqual([head, head])
  })

  it('does not count ignored files as changes', async () => {
    mkdirSync(join(repo, 'ignored'))
    writeFileSync(join(repo, 'ignored', 'big.bin'), 'x')
    expect(await hasUncommittedChanges(repo)).toBe(false)
    expect(await worktreeTree(repo)).toBe(run('rev-parse', 'HEAD^{tree}'))
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
    expect(await pushSource(repo, 'head')).toEqual({ tree: run('rev-parse', 'HEAD^{tree}'), from: 'head', commit: run('rev-parse', 'HEAD') })
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

// --- submodules and Git LFS -----------------------------------------------------------

/** A committed repository of its own in the test's directory (a submodule's upstream). */
function makeUpstream(name: string, files: Record<string, string>): string {
  const dir = join(repo, '..', `${name}-${Date.now()}-${Math.random().toString(36).slice(2)}`)
  mkdirSync(dir)
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' }).trim()
  git('init', '--quiet')
  git('config', 'user.email', 'test@example.com')
  git('config', 'user.name', 'Test')
  for (const [file, content] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true })
    writeFileSync(join(dir, file), content)
  }
  git('add', '-A')
  git('commit', '--quiet', '-m', 'upstream')
  upstreams.push(dir)
  return dir
}
const upstreams: string[] = []
afterEach(() => {
  for (const dir of upstreams.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** git in a directory of the superproject (a submodule's work tree). */
const runIn = (dir: string, ...args: string[]) => execFileSync('git', ['-c', 'protocol.file.allow=always', ...args], { cwd: join(repo, dir), encoding: 'utf8' }).trim()
const addSubmodule = (url: string, path: string, inDir = '.') => runIn(inDir, 'submodule', 'add', '--quiet', url, path)

async function archiveOf(tree: string): Promise<Record<string, string>> {
  const out = mkdtempSync(join(tmpdir(), 'trampoline-untar-'))
  try {
    execFileSync('tar', ['-x', '-C', out], { input: gitArchive(tree) })
    const files: Record<string, string> = {}
    const walk = (dir: string, prefix: string) => {
      for (const entry of readdirSync(join(out, dir), { withFileTypes: true })) {
        const rel = `${prefix}${entry.name}`
        if (entry.isDirectory()) walk(join(dir, entry.name), `${rel}/`)
        else files[rel] = readFileSync(join(out, dir, entry.name), 'utf8')
      }
    }
    walk('.', '')
    return files
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}

function objectCount(dir: string): number {
  const out = execFileSync('git', ['count-objects', '-v'], { cwd: dir, encoding: 'utf8' })
  return Number(/^count: (\d+)/m.exec(out)![1]) + Number(/^in-pack: (\d+)/m.exec(out)![1])
}

describe('submodules', () => {
  it('pushes a submodule\'s files at the commit HEAD records, not what is checked out', async () => {
    const lib = makeUpstream('lib', { 'lib.txt': 'v1\n' })
    commitFiles({ 'a.txt': 'a\n' })
    addSubmodule(lib, 'vendor/lib')
    run('commit', '--quiet', '-m', 'add lib')
    // A newer lib commit checked out in the submodule, not recorded in the superproject.
    writeFileSync(join(repo, 'vendor/lib/lib.txt'), 'v2\n')
    runIn('vendor/lib', '-c', 'user.email=t@e', '-c', 'user.name=T', 'commit', '--quiet', '-am', 'v2')

    const source = await pushSource(repo, 'head')
    expect(source.from).toBe('head')
    expect(source.submodules).toEqual(['vendor/lib'])
    expect(source.tree).not.toBe(run('rev-parse', 'HEAD^{tree}'))
    const files = await archiveOf(source.tree)
    expect(files['vendor/lib/lib.txt']).toBe('v1\n')
    expect(files['a.txt']).toBe('a\n')
    expect(Object.keys(files).sort()).toEqual(['.gitmodules', 'a.txt', 'vendor/lib/lib.txt'])
  })

  it('includes nested submodules recursively', async () => {
    const inner = makeUpstream('inner', { 'deep.txt': 'deep\n' })
    const outer = makeUpstream('outer', { 'outer.txt': 'outer\n' })
    execFileSync('git', ['-c', 'protocol.file.allow=always', 'submodule', 'add', '--quiet', inner, 'inner'], { cwd: outer })
    execFileSync('git', ['-c', 'user.email=t@e', '-c', 'user.name=T', 'commit', '--quiet', '-m', 'inner'], { cwd: outer })
    commitFiles({ 'a.txt': 'a\n' })
    addSubmodule(outer, 'outer')
    runIn('.', 'submodule', 'update', '--init', '--recursive', '--quiet')
    run('commit', '--quiet', '-m', 'outer')

    const source = await pushSource(repo, 'auto')
    expect(source.submodules).toEqual(['outer', 'outer/inner'])
    const files = await archiveOf(source.tree)
    expect(files['outer/outer.txt']).toBe('outer\n')
    expect(files['outer/inner/deep.txt']).toBe('deep\n')
  })

  it('gives the same content id every time, and leaves no object in the user\'s repositories', async () => {
    const lib = makeUpstream('lib', { 'lib.txt': 'v1\n' })
    commitFiles({ 'a.txt': 'a\n' })
    addSubmodule(lib, 'lib')
    run('commit', '--quiet', '-m', 'add lib')
    const before = [objectCount(repo), objectCount(join(repo, 'lib'))]
    const first = await pushSource(repo, 'head')
    expect((await pushSource(repo, 'head')).tree).toBe(first.tree)
    expect(await localTrees(repo)).toEqual([first.tree, first.tree])
    expect([objectCount(repo), objectCount(join(repo, 'lib'))]).toEqual(before)
  })

  it('--worktree includes a submodule\'s uncommitted and untracked work', async () => {
    const lib = makeUpstream('lib', { 'lib.txt': 'v1\n' })
    commitFiles({ 'a.txt': 'a\n' })
    addSubmodule(lib, 'lib')
    run('commit', '--quiet', '-m', 'add lib')
    const clean = await pushSource(repo, 'head')
    writeFileSync(join(repo, 'lib/lib.txt'), 'edited\n')
    writeFileSync(join(repo, 'lib/new.txt'), 'new\n')

    // A dirty submodule is uncommitted work: a plain push refuses it.
    await expect(pushSource(repo, 'auto')).rejects.toThrow(/uncommitted changes/)
    const source = await pushSource(repo, 'worktree')
    expect(source.tree).not.toBe(clean.tree)
    const files = await archiveOf(source.tree)
    expect(files['lib/lib.txt']).toBe('edited\n')
    expect(files['lib/new.txt']).toBe('new\n')
    // The staleness check sees the same tree the push would send.
    expect(await localTrees(repo)).toEqual([clean.tree, source.tree])
  })

  it('--worktree includes a repository cloned inside the project (a gitlink without .gitmodules)', async () => {
    commitFiles({ 'a.txt': 'a\n' })
    const tool = makeUpstream('tool', { 'tool.txt': 'tool\n' })
    execFileSync('git', ['clone', '--quiet', tool, join(repo, 'tool')])
    const files = await archiveOf((await pushSource(repo, 'worktree')).tree)
    expect(files['tool/tool.txt']).toBe('tool\n')
  })

  it('refuses, naming it, a submodule that is not checked out', async () => {
    const lib = makeUpstream('lib', { 'lib.txt': 'v1\n' })
    commitFiles({ 'a.txt': 'a\n' })
    addSubmodule(lib, 'deps/lib')
    run('commit', '--quiet', '-m', 'add lib')
    run('submodule', 'deinit', '--quiet', '-f', 'deps/lib')
    expect(existsSync(join(repo, 'deps/lib'))).toBe(true)

    for (const mode of ['head', 'worktree'] as const) {
      const error = (await pushSource(repo, mode).catch((e: unknown) => e)) as UserError
      expect(error).toBeInstanceOf(UserError)
      expect(error.message).toMatch(/submodule "deps\/lib" is not checked out/)
      expect(error.hint).toMatch(/git submodule update --init --recursive/)
      expect(error.exitCode).toBe(ExitCode.local)
    }
  })

  it('refuses a recorded commit the submodule\'s clone does not have', async () => {
    const lib = makeUpstream('lib', { 'lib.txt': 'v1\n' })
    commitFiles({ 'a.txt': 'a\n' })
    addSubmodule(lib, 'lib')
    run('commit', '--quiet', '-m', 'add lib')
    // Record a commit that exists only upstream.
    writeFileSync(join(lib, 'lib.txt'), 'upstream only\n')
    execFileSync('git', ['-c', 'user.email=t@e', '-c', 'user.name=T', 'commit', '--quiet', '-am', 'v2'], { cwd: lib })
    const missing = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: lib, encoding: 'utf8' }).trim()
    run('update-index', '--cacheinfo', `160000,${missing},lib`)
    run('commit', '--quiet', '-m', 'bump lib')
    await expect(pushSource(repo, 'head')).rejects.toThrow(new RegExp(`submodule "lib" records commit ${missing.slice(0, 12)}, which its clone here does not have`))
  })
})

describe('Git LFS pointer files', () => {
  const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n'

  it('finds pointers where .gitattributes routes files through LFS, and pushes them as they are with a warning naming them', async () => {
    commitFiles({ '.gitattributes': '*.bin filter=lfs diff=lfs merge=lfs -text\n', 'model.bin': pointer, 'small.txt': 'not a pointer\n' })
    const tree = run('rev-parse', 'HEAD^{tree}')
    expect(await lfsPointers(repo, tree)).toEqual(['model.bin'])
    const writes: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk))
      return true
    })
    try {
      await warnAboutLfs(repo, tree)
    } finally {
      spy.mockRestore()
    }
    expect((await archiveOf(tree))['model.bin']).toBe(pointer)
    expect(writes.join('')).toMatch(/warning: pushing 1 Git LFS pointer file as they are.*model\.bin/)
  })

  it('does not look without LFS attributes, and says nothing', async () => {
    commitFiles({ 'notes.txt': pointer })
    expect(await lfsPointers(repo, run('rev-parse', 'HEAD^{tree}'))).toEqual([])
  })

  it('reads git cat-file --batch output, binary content and missing objects included', () => {
    const out = Buffer.concat([Buffer.from('aaa blob 3\n'), Buffer.from([0, 10, 255]), Buffer.from('\nbbb missing\nccc blob 0\n\n')])
    const objects = parseCatFileBatch(out)
    expect([...objects.keys()]).toEqual(['aaa', 'ccc'])
    expect([...objects.get('aaa')!]).toEqual([0, 10, 255])
    expect(objects.get('ccc')!.length).toBe(0)
  })
})

// --- packs: what a push sends ---------------------------------------------------------

describe('packs of what the pod lacks', () => {
  beforeEach(() => commitFiles({ 'a.txt': 'a\n', 'b.txt': 'b\n' }))

  async function packedIds(pack: Awaited<ReturnType<typeof packObjects>>): Promise<string[]> {
    const chunks: Buffer[] = []
    pack.stream.on('data', (chunk: Buffer) => chunks.push(chunk))
    await pack.done
    // Index the pack in a scratch repository and list what it holds.
    const scratch = mkdtempSync(join(tmpdir(), 'trampoline-pack-test-'))
    try {
      execFileSync('git', ['init', '-q', scratch])
      const out = execFileSync('git', ['index-pack', '--stdin'], { cwd: scratch, input: Buffer.concat(chunks), encoding: 'utf8' }).trim()
      const idx = join(scratch, '.git', 'objects', 'pack', `pack-${out.split(/\s+/).pop()}.idx`)
      return execFileSync('git', ['show-index'], { cwd: scratch, input: readFileSync(idx), encoding: 'utf8' }).split('\n').filter(Boolean).map((line) => line.split(' ')[1]).sort()
    } finally {
      rmSync(scratch, { recursive: true, force: true })
    }
  }

  it('a full pack: every object of the tree, and the commit alone (no history)', async () => {
    writeFileSync(join(repo, 'a.txt'), 'second\n')
    run('commit', '-qam', 'second')
    const commit = (await headCommit(repo))!
    const tree = run('rev-parse', 'HEAD^{tree}')
    const pack = await packObjects(repo, { trees: [tree], commits: [commit], exclude: [] })
    const ids = await packedIds(pack)
    expect(ids).toEqual([commit, tree, run('rev-parse', 'HEAD:a.txt'), run('rev-parse', 'HEAD:b.txt')].sort())
    expect(pack.objects).toBe(4)
  })

  it('an incremental pack: only what changed since the tree the pod has', async () => {
    const before = run('rev-parse', 'HEAD^{tree}')
    writeFileSync(join(repo, 'a.txt'), 'changed\n')
    const tree = await worktreeTree(repo)
    const ids = await packedIds(await packObjects(repo, { trees: [tree], commits: [], exclude: [before] }))
    expect(ids).toEqual([tree, run('rev-parse', `${tree}:a.txt`)].sort())
    expect(revListArgs({ trees: [tree], commits: [], exclude: [before, before] })).toEqual(['rev-list', '--objects', tree, '--not', before])
  })

  it('the objects a tree has and another lacks, by comparing them: what rev-list --not finds', async () => {
    const before = run('rev-parse', 'HEAD^{tree}')
    writeFileSync(join(repo, 'a.txt'), 'changed\n')
    rmSync(join(repo, 'b.txt'))
    mkdirSync(join(repo, 'new', 'deeper'), { recursive: true })
    writeFileSync(join(repo, 'new', 'deeper', 'c.txt'), 'c\n')
    const tree = await worktreeTree(repo)
    const changed = (await changedObjects(repo, before, tree))!
    const listed = run('rev-list', '--objects', tree, '--not', before).split('\n').map((line) => line.split(' ')[0])
    expect([...changed].sort()).toEqual([...listed].sort())
    expect(await packedIds(packList(repo, [...changed, ...changed]))).toEqual([...listed].sort())
    expect(await changedObjects(repo, tree, tree)).toEqual([])
    // A tree that is not here: the caller walks the whole tree instead.
    expect(await changedObjects(repo, 'f'.repeat(40), tree)).toBeUndefined()
  })

  it('knows which ids are here, the branch and the identity', async () => {
    const here = run('rev-parse', 'HEAD')
    expect(await presentObjects(repo, [here, 'f'.repeat(40)])).toEqual([here])
    expect(await currentBranch(repo)).toBe(run('symbolic-ref', '--short', 'HEAD'))
    run('checkout', '-q', '--detach')
    expect(await currentBranch(repo)).toBeUndefined()
    expect(await gitIdentity(repo)).toEqual({ name: 'Test', email: 'test@example.com' })
  })
})
