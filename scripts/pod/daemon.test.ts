import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CHECK_AND_SIGN_SCRIPT } from './daemon.ts'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'check-sign-'))
  // Stand-ins: nix-store prints the arguments that name "missing" paths as invalid; nix records what it was asked.
  writeFileSync(join(dir, 'nix-store'), '#!/bin/sh\nfor a; do case $a in *missing*) echo "$a";; esac; done\n', { mode: 0o755 })
  writeFileSync(join(dir, 'nix'), `#!/bin/sh\necho "$*" >> ${dir}/nix.log\n`, { mode: 0o755 })
  writeFileSync(join(dir, 'key'), 'secret')
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

function run(paths: string[], mode: 'sign' | 'check', key = join(dir, 'key')) {
  const result = spawnSync('sh', ['-c', CHECK_AND_SIGN_SCRIPT, 'trampoline-sign', key, mode], {
    input: `${paths.join('\n')}\n`,
    encoding: 'utf8',
    env: { PATH: `${dir}:/usr/bin:/bin` },
  })
  let nixLog = ''
  try {
    nixLog = readFileSync(join(dir, 'nix.log'), 'utf8')
  } catch {
    // nix never ran
  }
  return { code: result.status, stdout: result.stdout, nixLog }
}

describe('CHECK_AND_SIGN_SCRIPT', () => {
  it('signs the closures of paths the store has', () => {
    const { code, nixLog } = run(['/nix/store/a-x', '/nix/store/b-y'], 'sign')
    expect(code).toBe(0)
    expect(nixLog).toContain(`store sign --recursive --key-file ${dir}/key /nix/store/a-x /nix/store/b-y`)
  })

  it('names the paths the store lacks, exits 3 and signs nothing', () => {
    const { code, stdout, nixLog } = run(['/nix/store/a-x', '/nix/store/c-missing'], 'sign')
    expect(code).toBe(3)
    expect(stdout).toBe('/nix/store/c-missing\n')
    expect(nixLog).toBe('')
  })

  it('only checks without sign, or without a readable key', () => {
    expect(run(['/nix/store/a-x'], 'check')).toMatchObject({ code: 0, nixLog: '' })
    expect(run(['/nix/store/a-x'], 'sign', join(dir, 'no-key'))).toMatchObject({ code: 0, nixLog: '' })
    expect(run(['/nix/store/c-missing'], 'check').code).toBe(3)
  })
})
