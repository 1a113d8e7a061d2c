import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { shimScript } from './shim.ts'

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
