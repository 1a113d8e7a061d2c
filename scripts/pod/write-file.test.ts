import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeFileArgv } from './write-file.ts'

const run = (argv: string[], input: string | Buffer) => spawnSync(argv[0], argv.slice(1), { input })

describe('writeFileArgv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'write-file-'))

  it('writes exactly the content, 0600, creating the directory', () => {
    const path = join(dir, 'sub', 'machines')
    const content = 'ssh-ng://a x86_64-linux\nüñï\n'
    const result = run(writeFileArgv(path, content), content)
    expect(result.status).toBe(0)
    expect(readFileSync(path, 'utf8')).toBe(content)
    expect(statSync(path).mode & 0o777).toBe(0o600)
  })

  it('stops reading at the announced size: a stdin that never ends does not hang it', async () => {
    const path = join(dir, 'open-stdin')
    const argv = writeFileArgv(path, 'abc')
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'ignore', 'inherit'] })
    child.stdin.write('abc') // and never ended
    const code = await new Promise((resolve) => child.on('exit', resolve))
    child.stdin.destroy()
    expect(code).toBe(0)
    expect(readFileSync(path, 'utf8')).toBe('abc')
  })

  it('an empty file needs no stdin at all', () => {
    const path = join(dir, 'empty')
    expect(run(writeFileArgv(path, ''), '').status).toBe(0)
    expect(readFileSync(path, 'utf8')).toBe('')
  })

  it('a short stdin fails and leaves the previous file', () => {
    const path = join(dir, 'short')
    run(writeFileArgv(path, 'old'), 'old')
    const result = run(writeFileArgv(path, 'longer content'), 'long')
    expect(result.status).toBe(1)
    expect(result.stderr.toString()).toContain('got 4 of 14 bytes')
    expect(readFileSync(path, 'utf8')).toBe('old')
  })
})
