import { spawn, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { PassThrough, Writable } from 'node:stream'
import { describe, expect, it, vi } from 'vitest'
import { EndTagStripper, endTagArgv, endTagHeader, newEndTag, tagStartLength } from './end-marker.ts'

/** A target that keeps what it gets. */
class Sink extends Writable {
  chunks: Buffer[] = []
  constructor(highWaterMark = 16 * 1024) {
    super({ highWaterMark })
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk)
    callback()
  }
  text(): string {
    return Buffer.concat(this.chunks).toString('latin1')
  }
}

function write(stream: Writable, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => stream.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data, (error) => (error ? reject(error) : resolve())))
}

function finish(stream: Writable): Promise<void> {
  return new Promise((resolve) => stream.end(resolve))
}

describe('newEndTag', () => {
  it('differs every time and starts with bytes text output does not end in', () => {
    const a = newEndTag()
    expect(a).not.toBe(newEndTag())
    expect(a.startsWith('\x1e\x1f')).toBe(true)
  })
})

describe('tagStartLength', () => {
  const tag = Buffer.from('\x1e\x1fEND', 'latin1')
  it('finds the longest proper prefix of the tag at the end', () => {
    expect(tagStartLength(Buffer.from('abc'), tag)).toBe(0)
    expect(tagStartLength(Buffer.from('abc\x1e', 'latin1'), tag)).toBe(1)
    expect(tagStartLength(Buffer.from('abc\x1e\x1fEN', 'latin1'), tag)).toBe(4)
    // The whole tag is not a "start": find() handles it.
    expect(tagStartLength(Buffer.from('abc\x1e\x1fEND', 'latin1'), tag)).toBe(0)
  })
})

describe('EndTagStripper', () => {
  const tag = newEndTag()

  it('passes output on without the tag and reads the status after it', async () => {
    const sink = new Sink()
    const stripper = new EndTagStripper(sink, tag)
    let seen = 0
    stripper.onSeen = () => seen++
    await write(stripper, 'hello\n')
    await write(stripper, `world${tag}42.`)
    await finish(stripper)
    expect(sink.text()).toBe('hello\nworld')
    expect(stripper.seen).toBe(true)
    expect(stripper.status).toBe(42)
    expect(seen).toBe(1)
  })

  it('finds a tag and a trailer cut into pieces, byte by byte', async () => {
    const sink = new Sink()
    const stripper = new EndTagStripper(sink, tag)
    for (const byte of Buffer.from(`out${tag}7.`, 'latin1')) await write(stripper, Buffer.from([byte]))
    await finish(stripper)
    expect(sink.text()).toBe('out')
    expect(stripper.status).toBe(7)
  })

  it('passes on what comes after the trailer (a background process still writing)', async () => {
    const sink = new Sink()
    const stripper = new EndTagStripper(sink, tag)
    await write(stripper, `a${tag}0.late`)
    await write(stripper, ' and later')
    await finish(stripper)
    expect(sink.text()).toBe('alate and later')
    expect(stripper.status).toBe(0)
  })

  it('without the tag, passes everything on and says it was not seen', async () => {
    const sink = new Sink()
    const stripper = new EndTagStripper(sink, tag)
    // Output that ends like the start of a tag is held, then given back at the end.
    await write(stripper, 'cut short\x1e\x1ftramp')
    await finish(stripper)
    expect(sink.text()).toBe('cut short\x1e\x1ftramp')
    expect(stripper.seen).toBe(false)
    expect(stripper.status).toBeUndefined()
  })

  it('gives back held bytes after a pause, so a peer waiting for them is not stuck', async () => {
    const sink = new Sink()
    const stripper = new EndTagStripper(sink, tag)
    await write(stripper, 'prompt\x1e')
    expect(sink.text()).toBe('prompt')
    await vi.waitFor(() => expect(sink.text()).toBe('prompt\x1e'), { timeout: 60_000, interval: 20 })
    // ...and the tag is still found if it turns out the held byte was its start.
    await write(stripper, `${tag.slice(1)}3.`)
    await finish(stripper)
    expect(stripper.status).toBe(3)
  })

  it('a malformed trailer is no status', async () => {
    const sink = new Sink()
    const stripper = new EndTagStripper(sink, tag)
    await write(stripper, `${tag}xyzw`)
    await finish(stripper)
    expect(stripper.seen).toBe(true)
    expect(stripper.status).toBeUndefined()
  })

  it('waits for its target to drain (backpressure), and loses nothing of a big stream', async () => {
    const received: Buffer[] = []
    let writes = 0
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        writes++
        received.push(chunk)
        setImmediate(callback)
      },
    })
    const stripper = new EndTagStripper(slow, tag)
    const blob = Buffer.alloc(1 << 20, 0x1e)
    for (let offset = 0; offset < blob.length; offset += 10_000) await write(stripper, blob.subarray(offset, offset + 10_000))
    await write(stripper, `${tag}0.`)
    await finish(stripper)
    expect(Buffer.concat(received).equals(blob)).toBe(true)
    expect(writes).toBeGreaterThan(1)
    expect(stripper.status).toBe(0)
  })

  it("reports its target's EPIPE as its own error (a reader that went away)", async () => {
    const target = new PassThrough()
    const stripper = new EndTagStripper(target, tag)
    const error = new Promise<NodeJS.ErrnoException>((resolve) => stripper.once('error', resolve))
    target.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))
    expect((await error).code).toBe('EPIPE')
  })
})

describe('the end tag script (a real sh, as in the pod)', () => {
  const tag = 'TAG'

  /** The wrapper under a real sh, the command in its header, then `input`. */
  function wrap(command: string[], nullStdin: boolean, input = ''): { status: number | null; stdout: string; stderr: string } {
    const [sh, ...args] = endTagArgv(tag, nullStdin)
    const result = spawnSync(sh, args, { input: Buffer.concat([endTagHeader(command), Buffer.from(input)]), encoding: 'utf8' })
    return { status: result.status, stdout: result.stdout, stderr: result.stderr }
  }

  it('prints the tag and status after the output on both streams, and exits with the status', () => {
    const result = wrap(['sh', '-c', 'echo out; echo err >&2; exit 5'], false)
    expect(result.stdout).toBe('out\nTAG5.')
    expect(result.stderr).toBe('err\nTAG5.')
    expect(result.status).toBe(5)
  })

  it('gives the command the rest of our stdin, byte for byte, or /dev/null in its place', () => {
    expect(wrap(['od', '-An', '-c'], false, 'x\ny\0z').stdout.replace(/\s+/g, ' ').trim()).toBe('x \\n y \\0 z TAG0.')
    expect(wrap(['cat'], true, 'not for cat').stdout).toBe('TAG0.')
  })

  it('keeps arguments as they are: spaces, quotes, newlines, $, backslashes, empty ones, UTF-8', () => {
    const args = ['a b', '', "it's", '"q"', 'line1\nline2', '$HOME', '`x`', 'back\\slash', '-n', 'é✓']
    expect(wrap(['printf', '[%s]', ...args], false).stdout).toBe(`${args.map((a) => `[${a}]`).join('')}TAG0.`)
  })

  it('a missing command is 127, as sh says it', () => {
    const result = wrap(['no-such-command-xyz'], true)
    expect(result.status).toBe(127)
    expect(result.stdout).toBe('TAG127.')
  })

  it('shows none of the command in its own command line (pkill -f, /proc scans)', async () => {
    const [sh, ...args] = endTagArgv(tag, false)
    const child = spawn(sh, args, { stdio: ['pipe', 'pipe', 'ignore'] })
    child.stdin.write(endTagHeader(['sh', '-c', 'echo secret-marker-42; exec cat >/dev/null']))
    let stdout = ''
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
        if (stdout.includes('secret-marker-42')) resolve()
      }),
    )
    const cmdline = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8')
    expect(cmdline).toContain('trampoline-end')
    expect(cmdline).not.toContain('secret-marker')
    child.stdin.end()
    await new Promise((resolve) => child.once('exit', resolve))
  })

  it('waits for the end of stdin after the tags before it exits', async () => {
    const [sh, ...args] = endTagArgv(tag, true)
    const child = spawn(sh, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    child.stdin.write(endTagHeader(['true']))
    let stdout = ''
    const tagged = new Promise<void>((resolve) =>
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString()
        if (stdout.endsWith('TAG0.')) resolve()
      }),
    )
    let exited = false
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => ((exited = true), resolve(code))))
    await tagged
    // The tag is out; the script is still there, waiting for stdin to end.
    expect(exited).toBe(false)
    child.stdin.end('unread leftovers')
    expect(await exit).toBe(0)
  })
})

describe('endTagHeader', () => {
  it('refuses what cannot be an argument', () => {
    expect(() => endTagHeader([])).toThrow(/empty/)
    expect(() => endTagHeader(['a\0b'])).toThrow(/NUL/)
  })
})
