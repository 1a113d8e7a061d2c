import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { removeDeadOnes, shimScript } from './shim.ts'

const target = { instance: 'dev', namespace: 'team a', context: "ctx'1" }
let dir: string

afterEach(() => rmSync(dir, { recursive: true, force: true }))

/** Runs the script with argv; `self` and the "real" ssh are stand-ins that print what they got. */
function run(argv: string[]): string {
  dir = mkdtempSync(join(tmpdir(), 'shim-test-'))
  const real = join(dir, 'real')
  execFileSync('mkdir', [real])
  writeFileSync(join(real, 'ssh'), '#!/bin/sh\necho "real ssh: $*"\n', { mode: 0o755 })
  writeFileSync(join(dir, 'self'), '#!/bin/sh\nprintf "[%s]" "$@"\n', { mode: 0o755 })
  writeFileSync(join(dir, 'ssh'), shimScript(target, [join(dir, 'self')], real), { mode: 0o755 })
  return execFileSync(join(dir, 'ssh'), argv, { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } })
}

describe('shimScript', () => {
  it('sends the exec store host to store-stdio with the instance options, quoted', () => {
    expect(run(['trampoline-exec-dev', '-x', 'nix-daemon --stdio'])).toBe(
      "[store-stdio][--context][ctx'1][--namespace][team a][--name][dev][--quiet][--][trampoline-exec-dev][-x][nix-daemon --stdio]",
    )
  })

  it('sends a master check for that host there too', () => {
    expect(run(['-O', 'check', 'trampoline-exec-dev'])).toContain('[store-stdio]')
  })

  it('sends any other host to the real ssh', () => {
    expect(run(['builder.example', '-x', 'nix-daemon --stdio'])).toBe('real ssh: builder.example -x nix-daemon --stdio\n')
    expect(run(['-O', 'check', 'other'])).toBe('real ssh: -O check other\n')
  })
})

describe('removeDeadOnes', () => {
  it("removes the dirs of runs whose process is gone, and nothing else", () => {
    const parent = mkdtempSync(join(tmpdir(), 'shim-sweep-'))
    try {
      for (const name of ['trampoline-exec-store-111-aaa', 'trampoline-exec-store-222-bbb', 'trampoline-exec-store-old', 'other-333-ccc']) {
        mkdirSync(join(parent, name))
        writeFileSync(join(parent, name, 'ssh'), '#!/bin/sh\n')
      }
      removeDeadOnes(parent, (pid) => pid === 222)
      expect(readdirSync(parent).sort()).toEqual(['other-333-ccc', 'trampoline-exec-store-222-bbb', 'trampoline-exec-store-old'])
    } finally {
      rmSync(parent, { recursive: true, force: true })
    }
  })
})
