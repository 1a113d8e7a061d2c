import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { once } from 'node:events'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openFifoBridge, type FifoBridge } from './bridge.ts'
import { shimScript } from './shim.ts'
import { GATE_SCRIPT, NO_GO_EXIT } from './serve.ts'

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

describe('GATE_SCRIPT', () => {
  const gate = (input: string, program: string[], every = '10', checks = '60') =>
    spawnSync('sh', ['-c', GATE_SCRIPT, 'trampoline-store', every, checks, ...program], { input, encoding: 'utf8', timeout: 60_000 })

  it('runs the program after the go line, with the rest of stdin untouched, and passes its status', () => {
    const result = gate('go\nab\n\x01', ['od', '-c'])
    expect(result.status).toBe(0)
    expect(result.stdout.replace(/\s+/g, ' ').trim()).toBe('0000000 a b \\n 001 0000004')
    expect(gate('go\n', ['sh', '-c', 'exit 7']).status).toBe(7)
  })

  it(`exits ${NO_GO_EXIT} without the go line`, () => {
    expect(gate('', ['true']).status).toBe(NO_GO_EXIT)
    expect(gate('stop\n', ['true']).status).toBe(NO_GO_EXIT)
  })

  it('stops a program whose I/O stands still (a client gone without a word), and says so', () => {
    const result = gate('go\n', ['sleep', '600'], '0.1', '3')
    expect(result.error).toBeUndefined()
    expect(result.status).toBe(143)
    expect(result.stderr).toMatch(/sleep moved no byte .* its client is gone; stopping it/)
  })

  it('ends with the program, not with the watchdog\'s next check', () => {
    // A 60-s pace: the gate must not wait for the watchdog's sleep (spawnSync waits for every holder of its pipes).
    const result = spawnSync('sh', ['-c', GATE_SCRIPT, 'trampoline-store', '60', '10', 'echo', 'done'], { input: 'go\n', encoding: 'utf8', timeout: 30_000 })
    expect(result.error).toBeUndefined()
    expect(result.status).toBe(0)
    expect(result.stdout).toBe('done\n')
  })

  it('leaves a program that keeps moving bytes alone', () => {
    // Writes a line every 50 ms for 2 s; the watchdog would stop it after 3 s without a byte.
    const result = gate('go\n', ['sh', '-c', 'i=0; while [ $i -lt 40 ]; do echo $i; sleep 0.05; i=$((i+1)); done'], '0.1', '30')
    expect(result.status).toBe(0)
    expect(result.stdout.split('\n')).toHaveLength(41)
  })
})
