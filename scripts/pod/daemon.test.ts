import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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
  // Stand-ins, in a store under dir: paths named "-have" are on disk and valid, "-partial"
  // on disk but not valid (left by a copy cut short), "-new" not on disk; those two are
  // invalid until they arrive. The program of either mode records its stdin byte for byte
  // and makes the paths listed in `arrives` valid (a copy cut short brings fewer); the
  // daemon answers on stdout and exits with DAEMON_EXIT. nix-store logs its checks.
  function standIns(paths: string[], arrives: string[]) {
    mkdirSync(join(dir, 'store'), { recursive: true })
    for (const path of paths) if (!path.includes('-new')) mkdirSync(path, { recursive: true })
    writeFileSync(join(dir, 'arrives'), arrives.map((path) => `${path}\n`).join(''))
    const take = `cat > ${dir}/received; cat ${dir}/arrives >> ${dir}/arrived`
    writeFileSync(
      join(dir, 'nix-store'),
      `#!/bin/sh\nif [ "$1" = --import ]; then ${take}; echo imported-and-printed; exit 0; fi\n` +
        `echo "$*" >> ${dir}/nix-store.log\n` +
        `for a; do case $a in *-new*|*-partial*) grep -qxF "$a" ${dir}/arrived 2>/dev/null || echo "$a";; esac; done\n`,
      { mode: 0o755 },
    )
    // nix store sign refuses a path that has not arrived (an invalid one), as the real one does.
    writeFileSync(
      join(dir, 'nix'),
      `#!/bin/sh\nfor a; do case $a in *-new*) grep -qxF "$a" ${dir}/arrived 2>/dev/null || { echo "error: path '$a' is not valid" >&2; exit 1; };; esac; done\n` +
        `echo "$*" >> ${dir}/nix.log\n`,
      { mode: 0o755 },
    )
    writeFileSync(join(dir, 'nix-daemon'), `#!/bin/sh\n[ "$1" = --stdio ] || exit 9\n${take}; echo daemon-reply; exit "\${DAEMON_EXIT:-0}"\n`, { mode: 0o755 })
  }

  /** The protocol as the CLI speaks it: the list, then (after the answer) the stream for the mode's program. */
  async function copy(mode: 'daemon' | 'export', paths: string[], stream: Buffer | undefined, options: { arrives?: string[]; daemonExit?: number } = {}) {
    standIns(paths, options.arrives ?? paths.filter((path) => path.includes('-new') || path.includes('-partial')))
    const child = spawn('bash', ['-c', IMPORT_MISSING_SCRIPT, 'trampoline-import', join(dir, 'key'), MISSING_LIST_END, mode, '10', '60'], {
      // HOME: bash reads ~/.bashrc when its stdin is a socket (as Node's pipes are).
      env: { PATH: `${dir}:/usr/bin:/bin`, HOME: dir, DAEMON_EXIT: String(options.daemonExit ?? 0) },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    const rest = new PassThrough()
    let after = ''
    rest.on('data', (chunk: Buffer) => (after += chunk))
    const reader = new MissingListReader(rest)
    child.stdout.pipe(reader)
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk))
    // close, not exit: once its stdout is read to the end too.
    const closed = once(child, 'close')
    child.stdin.write(`${paths.length}\n${paths.map((p) => `${p}\n`).join('')}`)
    const missing = await reader.list
    if (stream) child.stdin.write(stream)
    child.stdin.end()
    const [code] = await closed
    let received: Buffer | undefined
    try {
      received = readFileSync(join(dir, 'received'))
    } catch {
      // nothing received
    }
    const log = (name: string) => {
      try {
        return readFileSync(join(dir, name), 'utf8')
      } catch {
        return '' // never ran
      }
    }
    return { code, missing, received, after, stderr, nixLog: log('nix.log'), checks: log('nix-store.log') }
  }

  const stream = Buffer.concat([Buffer.from('NAR\n'), Buffer.alloc(100_000, 0xff), Buffer.from('\nend')])
  let paths: string[]
  const inStore = (name: string) => join(dir, 'store', name)
  beforeEach(() => (paths = [inStore('a-have'), inStore('b-new'), inStore('c-new')]))

  it('answers what is missing, then serves a root nix-daemon exactly the stream that follows, its answers on stdout, and signs what arrived', async () => {
    const { code, missing, received, after, nixLog, stderr } = await copy('daemon', paths, stream)
    expect(code).toBe(0)
    expect(missing).toEqual([inStore('b-new'), inStore('c-new')])
    expect(received?.equals(stream)).toBe(true)
    expect(after).toBe('daemon-reply\n')
    expect(nixLog).toBe(`--extra-experimental-features nix-command store sign --quiet --key-file ${dir}/key ${inStore('b-new')} ${inStore('c-new')}\n`)
    expect(stderr).toBe('')
  })

  it('imports an export stream instead in the export mode, printing nothing of it', async () => {
    const { code, missing, received, after, nixLog } = await copy('export', paths, stream)
    expect(code).toBe(0)
    expect(missing).toEqual([inStore('b-new'), inStore('c-new')])
    expect(received?.equals(stream)).toBe(true)
    expect(after).toBe('')
    expect(nixLog).toContain('store sign --quiet --key-file')
  })

  it('after a copy cut short, signs what did arrive and passes the failure on', async () => {
    const { code, nixLog } = await copy('daemon', paths, stream, { arrives: [inStore('b-new')], daemonExit: 1 })
    expect(code).toBe(1)
    expect(nixLog).toBe(`--extra-experimental-features nix-command store sign --quiet --key-file ${dir}/key ${inStore('b-new')}\n`)
  })

  it('signs nothing when nothing arrived', async () => {
    const { code, nixLog } = await copy('daemon', paths, undefined, { arrives: [] })
    expect(code).toBe(0)
    expect(nixLog).toBe('')
  })

  it('asks Nix only about the paths on disk, and counts one it does not know as missing', async () => {
    const listed = [inStore('a-have'), inStore('b-new'), inStore('c-partial'), inStore('d-have')]
    const { code, missing, checks } = await copy('daemon', listed, stream)
    expect(code).toBe(0)
    expect(missing.sort()).toEqual([inStore('b-new'), inStore('c-partial')])
    expect(checks.split('\n')[0]).toBe(`--check-validity --print-invalid ${inStore('a-have')} ${inStore('c-partial')} ${inStore('d-have')}`)
  })

  it('does not start Nix to check when no path is on disk (a fresh copy)', async () => {
    const { missing, checks } = await copy('daemon', [inStore('b-new'), inStore('c-new')], stream)
    expect(missing).toEqual([inStore('b-new'), inStore('c-new')])
    expect(checks).toBe('')
  })

  it('with nothing missing answers an empty list and runs nothing', async () => {
    const { code, missing, received, after } = await copy('daemon', [inStore('a-have')], undefined)
    expect(code).toBe(0)
    expect(missing).toEqual([])
    expect(received).toBeUndefined()
    expect(after).toBe('')
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
