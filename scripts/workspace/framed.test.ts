import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ExitCode } from '../errors.ts'
import { pushSource } from '../git.ts'
import { InstanceState } from '../state.ts'
import { PUSH_RECEIVE } from '../pod/contract.ts'
import { FramedOutput, PUSHED_MARKER, prepareFramed, settleFramed, type FramedPush } from './framed.ts'
import { lastPushed } from './record.ts'

let dir: string
let repo: string
const git = (...args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' }).trim()

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'trampoline-framed-test-'))
  repo = join(dir, 'repo')
  execFileSync('git', ['init', '-q', '-b', 'main', repo])
  git('config', 'user.email', 'test@example.com')
  git('config', 'user.name', 'Test')
  git('config', 'commit.gpgsign', 'false')
  for (let i = 0; i < 20; i++) writeFileSync(join(repo, `f${i}.txt`), `file ${i}\n`)
  git('add', '-A')
  git('commit', '-qm', 'one')
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

async function read(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

describe('the framed push (the sh adapter)', () => {
  it("sends the edit's objects, then the command's stdin, to receive --framed", async () => {
    const last = { tree: git('rev-parse', 'HEAD^{tree}'), commit: git('rev-parse', 'HEAD') }
    writeFileSync(join(repo, 'f3.txt'), 'edited\n')
    const source = await pushSource(repo, 'worktree')
    const stdin = Readable.from([Buffer.from('input of the command')])
    const framed = (await prepareFramed(repo, source, last, { command: ['sh', '-c', 'cat'], stdin, stdout: new PassThrough(), stderr: new PassThrough() }))!
    // Only the new tree and the edited file: the pod has the commit and the last tree.
    expect(framed.objects).toBe(2)
    expect(framed.command).toEqual([
      PUSH_RECEIVE, 'receive', '--tree', source.tree, '--base', last.commit, '--from', last.tree, '--branch', 'main',
      '--name', 'Test', '--email', 'test@example.com', '--objects', '2', '--framed', '--', 'sh', '-c', 'cat',
    ])
    const input = await read(framed.stdin)
    const eol = input.indexOf(0x0a)
    expect(Number(input.subarray(0, eol).toString())).toBe(framed.bytes)
    const pack = input.subarray(eol + 1, eol + 1 + framed.bytes)
    expect(pack.subarray(0, 4).toString()).toBe('PACK')
    expect(input.subarray(eol + 1 + framed.bytes).toString()).toBe('input of the command')
  })

  it('a pod tree unknown here: what its commit lacks; nothing known: everything', async () => {
    writeFileSync(join(repo, 'f3.txt'), 'edited\n')
    const source = await pushSource(repo, 'worktree')
    const run = () => ({ command: ['true'], stdin: Readable.from([]), stdout: new PassThrough(), stderr: new PassThrough() })
    const unknown = 'f'.repeat(40)
    expect((await prepareFramed(repo, source, { tree: unknown, commit: git('rev-parse', 'HEAD') }, run()))!.objects).toBe(2)
    // The new tree (root and 20 files), the commit's tree (root and the old f3.txt), the commit.
    expect((await prepareFramed(repo, source, { tree: unknown, commit: unknown }, run()))!.objects).toBe(24)
  })

  describe('what its exit means', () => {
    const source = { tree: 'a'.repeat(40), from: 'worktree' as const, commit: 'b'.repeat(40) }
    const state = () => new InstanceState(join(dir, 'state'))
    const framedWith = (output: string): FramedPush => {
      const stdout = new FramedOutput(new PassThrough())
      if (output) stdout.write(output)
      return { command: [], stdin: Readable.from([]), stdout, stderr: new PassThrough(), bytes: 1, objects: 1 }
    }
    const report = (pushed: string, base: string) =>
      `pushed ${pushed}\ncommit ${base}\nbase ${base}\nhead ${base}\nbranch main\nworktree ${'e'.repeat(40)}\ncommits 0\nchanges\n`

    it('pushed: the command ran (any exit code is its own) and the push is recorded', () => {
      const at = state()
      expect(settleFramed(at, 'default', source, framedWith(`${PUSHED_MARKER}\n`), 3)).toEqual({ exitCode: 3 })
      expect(lastPushed(at)).toEqual({ tree: source.tree, commit: source.commit })
    })

    it('66 before the marker: the pod has changes; nothing is recorded', () => {
      const at = state()
      expect(() => settleFramed(at, 'default', source, framedWith(report('c'.repeat(40), 'd'.repeat(40))), 66)).toThrow(expect.objectContaining({ exitCode: ExitCode.podChanges }))
      expect(lastPushed(at)).toBeUndefined()
    })

    it("67 before the marker: resend, with the pod's state", () => {
      const outcome = settleFramed(state(), 'default', source, framedWith(report('c'.repeat(40), 'd'.repeat(40))), 67)
      expect(outcome).toEqual({ resend: expect.objectContaining({ pushed: 'c'.repeat(40), base: 'd'.repeat(40) }) })
    })

    it('any other failure before the marker is the receive failing', () => {
      expect(() => settleFramed(state(), 'default', source, framedWith(''), 28)).toThrow(/store volume is full/)
    })
  })
})
