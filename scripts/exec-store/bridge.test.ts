import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openFifoBridge, type FifoBridge } from './bridge.ts'
import { shimScript } from './shim.ts'
import { SERVE_SCRIPT, SIGN_REPORT, SignReport, serveArgv } from './serve.ts'
import { CHECK_AND_SIGN_SCRIPT } from '../pod/daemon.ts'
import { POD_SIGNING_KEY_FILE } from '../pod/contract.ts'

const target = { instance: 'dev', namespace: 'ns', context: 'ctx' }
const host = 'trampoline-exec-dev'
let dir: string
let bridge: FifoBridge | undefined

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'bridge-test-'))
  bridge = openFifoBridge(dir)
  // The general path's stand-in: says it was taken.
  writeFileSync(join(dir, 'self'), '#!/bin/sh\necho "general path: $*"\n', { mode: 0o755 })
  writeFileSync(join(dir, 'ssh'), shimScript(target, [join(dir, 'self')], '/usr/bin:/bin', { dir, program: ['nix-daemon', '--stdio'] }), { mode: 0o755 })
})

afterEach(() => {
  bridge?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Runs the shim as Nix would, with `input` on its stdin; resolves to its stdout once it exits. */
function runShim(argv: string[], input: Buffer | string, keepOpen = false): { done: Promise<string>; end: () => void } {
  const child = spawn(join(dir, 'ssh'), argv, { stdio: ['pipe', 'pipe', 'inherit'] })
  const chunks: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk))
  child.stdin.write(input)
  if (!keepOpen) child.stdin.end()
  // 'close', not 'exit': the shim's background cat holds its stdout until the bridge closes.
  const done = once(child, 'close').then(() => Buffer.concat(chunks).toString('utf8'))
  return { done, end: () => child.stdin.end() }
}

function read(stream: NodeJS.ReadableStream, bytes: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let got = 0
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      got += chunk.length
      if (got >= bytes) {
        stream.off('data', onData)
        stream.pause()
        resolve(Buffer.concat(chunks))
      }
    }
    stream.on('data', onData)
    stream.resume()
  })
}

describe('the FIFO bridge and its shim', () => {
  it('carries Nix\'s bytes both ways, byte for byte, for the first connection', async () => {
    expect(bridge).toBeDefined()
    const { fromNix, toNix } = bridge!
    const request = Buffer.alloc(300_000, 7)
    request.write('hello from nix')
    const shim = runShim([host, '-x', '-a', 'nix-daemon --stdio'], request, true)
    const got = await read(fromNix, request.length)
    expect(got.equals(request)).toBe(true)
    const reply = Buffer.alloc(200_000, 'r')
    reply.write('hello from the pod')
    await new Promise((resolve) => toNix.write(reply, resolve))
    shim.end()
    bridge!.close()
    expect(await shim.done).toBe(reply.toString('utf8'))
  })

  it('prints "started" first when Nix asks for ssh\'s LocalCommand (words after --)', async () => {
    const shim = runShim([host, '-x', '-a', '-oLocalCommand=echo started', '--', 'nix-daemon', '--stdio'], 'x')
    await read(bridge!.fromNix, 1)
    await new Promise((resolve) => bridge!.toNix.write('reply', resolve))
    bridge!.close()
    expect(await shim.done).toBe('started\nreply')
  })

  it('gives a second connection the general path (the bridge is once only)', async () => {
    const first = runShim([host, '-x', 'nix-daemon --stdio'], 'a', true)
    await read(bridge!.fromNix, 1)
    const second = spawnSync(join(dir, 'ssh'), [host, '-x', 'nix-daemon --stdio'], { encoding: 'utf8' })
    expect(second.stdout).toBe(`general path: store-stdio --context ctx --namespace ns --name dev --quiet -- ${host} -x nix-daemon --stdio\n`)
    first.end()
    bridge!.close()
    await first.done
  })

  it('gives other programs and master checks the general path', () => {
    for (const argv of [[host, '-x', 'nix-store --serve'], ['-O', 'check', host], [host, '-x', 'sh -c nix-daemon --stdio; id']]) {
      const out = spawnSync(join(dir, 'ssh'), argv, { encoding: 'utf8' })
      expect(out.stdout).toContain('general path: store-stdio')
    }
  })
})

describe('closing the bridge', () => {
  it('lets through a shim still opening a FIFO, before or after the close', async () => {
    for (const [fifo, redirect] of [['down', '<'], ['up', '>']]) {
      const again = openFifoBridge(mkdtempSync(join(dir, 'again-')))!
      // With this end gone, a plain open would wait for ever for a partner.
      again.toNix.destroy()
      again.fromNix.destroy()
      const path = fifo === 'down' ? again.downPath : again.upPath
      const opener = spawn('sh', ['-c', `exec cat ${redirect}"$1"`, 'opener', path], { stdio: 'ignore' })
      const exited = once(opener, 'exit')
      again.close()
      await exited
    }
  })

  it('makes a shim after the close fail instead of wait', () => {
    bridge!.close()
    const late = spawnSync(join(dir, 'ssh'), [host, '-x', 'nix-daemon --stdio'], { encoding: 'utf8', timeout: 20_000 })
    expect(late.error).toBeUndefined()
    expect(late.status).not.toBe(0)
  })
})

describe('SERVE_SCRIPT', () => {
  // The check-and-sign step's stand-in: records its arguments and stdin (the paths), then exits as told.
  const prelude = (code: number) => `{ echo "$*"; cat; } > "$STEP_LOG"; [ ${code} -ne 3 ] || echo /nix/store/c-missing; exit ${code}`
  const serve = (input: string, program: string[], options: { code?: number; every?: string; checks?: string } = {}) => {
    const log = join(dir, 'step.log')
    const argv = ['-c', SERVE_SCRIPT, 'trampoline-store', prelude(options.code ?? 0), 'KEY', 'sign', '/nix/store/a-x\n/nix/store/b-y\n', options.every ?? '10', options.checks ?? '60', ...program]
    const result = spawnSync('sh', argv, { input, encoding: 'utf8', timeout: 60_000, env: { ...process.env, STEP_LOG: log } })
    let step = ''
    try {
      step = readFileSync(log, 'utf8')
    } catch {
      // the step never ran
    }
    return { ...result, step }
  }

  it('checks and signs first (key, mode, the paths on its stdin), then runs the program with stdin untouched, and passes its status', () => {
    const result = serve('ab\n\x01', ['od', '-c'])
    expect(result.step).toBe('KEY sign\n/nix/store/a-x\n/nix/store/b-y\n')
    expect(result.status).toBe(0)
    expect(result.stdout.replace(/\s+/g, ' ').trim()).toBe('0000000 a b \\n 001 0000004')
    expect(serve('', ['sh', '-c', 'exit 7']).status).toBe(7)
  })

  it('reports what the store lacks and never starts the program', () => {
    const result = serve('x', ['sh', '-c', 'echo started'], { code: 3 })
    expect(result.status).toBe(3)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(`${SIGN_REPORT} lacks /nix/store/c-missing\n${SIGN_REPORT} exit 3\n`)
  })

  it('reports a failed signing with its status', () => {
    const result = serve('x', ['sh', '-c', 'echo started'], { code: 1 })
    expect(result.status).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(`${SIGN_REPORT} exit 1\n`)
  })

  it('stops a program whose I/O stands still (a client gone without a word), and says so', () => {
    const result = serve('', ['sleep', '600'], { every: '0.1', checks: '3' })
    expect(result.error).toBeUndefined()
    expect(result.status).toBe(143)
    expect(result.stderr).toMatch(/sleep moved no byte .* its client is gone; stopping it/)
  })

  it('ends with the program, not with the watchdog\'s next check', () => {
    // A 60-s pace: the script must not wait for the watchdog's sleep (spawnSync waits for every holder of its pipes).
    const result = serve('', ['echo', 'done'], { every: '60', checks: '10' })
    expect(result.error).toBeUndefined()
    expect(result.status).toBe(0)
    expect(result.stdout).toBe('done\n')
  })

  it('leaves a program that keeps moving bytes alone', () => {
    // Writes a line every 50 ms for 2 s; the watchdog would stop it after 3 s without a byte.
    const result = serve('', ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo $i; sleep 0.05; i=$((i+1)); done'], { every: '0.1', checks: '30' })
    expect(result.status).toBe(0)
    expect(result.stdout.split('\n')).toHaveLength(41)
  })

  it('runs the real check-and-sign script as its first step', () => {
    const path = `/nix/store/${'a'.repeat(32)}-tool`
    const argv = serveArgv([`${path}/bin/tool`], true, ['nix-daemon', '--stdio'], 5, 120)
    expect(argv.slice(0, 4)).toEqual(['sh', '-c', SERVE_SCRIPT, 'trampoline-store'])
    expect(argv[4]).toBe(CHECK_AND_SIGN_SCRIPT)
    // A file in a store path stands for the path.
    expect(argv.slice(5)).toEqual([POD_SIGNING_KEY_FILE, 'sign', `${path}\n`, '5', '120', 'nix-daemon', '--stdio'])
  })
})

describe('SignReport', () => {
  const collect = () => {
    let text = ''
    const out = new Writable({ write: (chunk: Buffer, _e, done) => ((text += chunk), done()) })
    return { out, text: () => text }
  }

  it('passes the pod\'s other lines on as they come and keeps its own', async () => {
    const { out, text } = collect()
    const report = new SignReport(out)
    report.write('warning: some')
    report.write(' thing\ntrampoline-sign: lacks /nix/store/c-x\n')
    report.end('trampoline-sign: exit 3\nlast words')
    await once(report, 'finish')
    expect(text()).toBe('warning: some thing\nlast words\n')
    expect(report.failure()?.message).toBe("the pod's store does not have /nix/store/c-x")
  })

  it('says a signing failed with its status, and nothing when all went well', async () => {
    const failed = new SignReport(collect().out)
    failed.end('trampoline-sign: exit 4\n')
    await once(failed, 'finish')
    expect(failed.failure()?.message).toMatch(/^signing in the nix-daemon container failed \(exit 4\)/)
    const fine = new SignReport(collect().out)
    fine.end('error: not ours\n')
    await once(fine, 'finish')
    expect(fine.failure()).toBeUndefined()
  })
})
