import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { CHECK_AND_SIGN_SCRIPT, IMPORT_MISSING_SCRIPT, MISSING_LIST_END } from './daemon.ts'
import { MissingListReader } from '../store-import.ts'
import { PassThrough } from 'node:stream'

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'check-sign-'))
  // Stand-ins: nix-store prints the arguments that name "missing" paths as invalid; nix
  // refuses those (as nix store sign does an invalid path) and a key saying "broken", and
  // records what it did.
  writeFileSync(join(dir, 'nix-store'), '#!/bin/sh\nfor a; do case $a in *missing*) echo "$a";; esac; done\n', { mode: 0o755 })
  writeFileSync(
    join(dir, 'nix'),
    `#!/bin/sh\nfor a; do case $a in *missing*) echo "error: path '$a' is not valid" >&2; exit 1;; esac; done\n` +
      `k=; for a; do [ "$k" != next ] || k=$a; [ "$a" != --key-file ] || k=next; done\n` +
      `[ "$(cat "$k" 2>/dev/null)" != broken ] || { echo "error: bad key" >&2; exit 1; }\necho "$*" >> ${dir}/nix.log\n`,
    { mode: 0o755 },
  )
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
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, nixLog }
}

describe('CHECK_AND_SIGN_SCRIPT', () => {
  it('signs the closures of paths the store has', () => {
    const { code, nixLog } = run(['/nix/store/a-x', '/nix/store/b-y'], 'sign')
    expect(code).toBe(0)
    expect(nixLog).toContain(`store sign --quiet --recursive --key-file ${dir}/key /nix/store/a-x /nix/store/b-y`)
  })

  it('names the paths the store lacks, exits 3 and signs nothing', () => {
    const { code, stdout, nixLog } = run(['/nix/store/a-x', '/nix/store/c-missing'], 'sign')
    expect(code).toBe(3)
    expect(stdout).toBe('/nix/store/c-missing\n')
    expect(nixLog).toBe('')
  })

  it('passes a signing that failed for another reason on, with its error', () => {
    writeFileSync(join(dir, 'key'), 'broken')
    const { code, stdout, stderr, nixLog } = run(['/nix/store/a-x'], 'sign')
    expect(code).toBe(1)
    expect(stdout).toBe('')
    expect(stderr).toBe('error: bad key\n')
    expect(nixLog).toBe('')
  })

  it('only checks without sign, or without a readable key', () => {
    expect(run(['/nix/store/a-x'], 'check')).toMatchObject({ code: 0, nixLog: '' })
    expect(run(['/nix/store/a-x'], 'sign', join(dir, 'no-key'))).toMatchObject({ code: 0, nixLog: '' })
    expect(run(['/nix/store/c-missing'], 'check').code).toBe(3)
  })
})

describe('IMPORT_MISSING_SCRIPT', () => {
  // A nix-store that also imports: records stdin byte for byte and prints one added path.
  const importer = (dir: string) =>
    writeFileSync(
      join(dir, 'nix-store'),
      `#!/bin/sh\nif [ "$1" = --import ]; then cat > ${dir}/imported; echo /nix/store/new-imported; exit 0; fi\nfor a; do case $a in *missing*) echo "$a";; esac; done\n`,
      { mode: 0o755 },
    )

  /** The protocol as the CLI speaks it: the list, then (after the answer) the export stream. */
  async function copy(paths: string[], stream: Buffer | undefined) {
    importer(dir)
    const child = spawn('bash', ['-c', IMPORT_MISSING_SCRIPT, 'trampoline-import', join(dir, 'key'), MISSING_LIST_END], {
      // HOME: bash reads ~/.bashrc when its stdin is a socket (as Node's pipes are).
      env: { PATH: `${dir}:/usr/bin:/bin`, HOME: dir },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const rest = new PassThrough()
    const reader = new MissingListReader(rest)
    child.stdout.pipe(reader)
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    const exited = once(child, 'exit')
    child.stdin.write(`${paths.length}\n${paths.map((p) => `${p}\n`).join('')}`)
    const missing = await reader.list
    if (stream) child.stdin.write(stream)
    child.stdin.end()
    const [code] = await exited
    let imported: Buffer | undefined
    try {
      imported = readFileSync(join(dir, 'imported'))
    } catch {
      // nothing imported
    }
    let nixLog = ''
    try {
      nixLog = readFileSync(join(dir, 'nix.log'), 'utf8')
    } catch {
      // nix never ran
    }
    return { code, missing, imported, stderr, nixLog }
  }

  it('answers what is missing, then imports exactly the stream that follows and signs what was added', async () => {
    const stream = Buffer.concat([Buffer.from('NAR\n'), Buffer.alloc(100_000, 0xff), Buffer.from('\nend')])
    const { code, missing, imported, nixLog, stderr } = await copy(['/nix/store/a-have', '/nix/store/b-missing', '/nix/store/c-missing'], stream)
    expect(code).toBe(0)
    expect(missing).toEqual(['/nix/store/b-missing', '/nix/store/c-missing'])
    expect(imported?.equals(stream)).toBe(true)
    expect(nixLog).toContain(`store sign --quiet --key-file ${dir}/key /nix/store/new-imported`)
    expect(stderr).toBe('')
  })

  it('with nothing missing answers an empty list and imports nothing', async () => {
    const { code, missing, imported } = await copy(['/nix/store/a-have'], undefined)
    expect(code).toBe(0)
    expect(missing).toEqual([])
    expect(imported).toBeUndefined()
  })
})

describe('MissingListReader', () => {
  it('finds the end marker cut anywhere, and passes on what follows', async () => {
    const text = `/nix/store/b-missing\n${MISSING_LIST_END}\nsigned 1 path\n`
    for (let cut = 0; cut <= text.length; cut++) {
      const rest = new PassThrough()
      let after = ''
      rest.on('data', (chunk: Buffer) => (after += chunk))
      const reader = new MissingListReader(rest)
      reader.write(text.slice(0, cut))
      reader.write(text.slice(cut))
      expect(await reader.list).toEqual(['/nix/store/b-missing'])
      await new Promise((resolve) => setImmediate(resolve))
      expect(after).toBe('signed 1 path\n')
    }
  })
})
