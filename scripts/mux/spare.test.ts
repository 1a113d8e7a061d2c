import { spawnSync } from 'node:child_process'
// bash reads ~/.bashrc when stdin is a socket (as spawn gives it): HOME points nowhere here.
import { describe, expect, it } from 'vitest'
import { SPARE_ARGV, encodeSpareHeader } from './spare.ts'

/** The launcher under a real bash (the pod's), as the spare exec runs it. */
function launch(input: Buffer): { status: number | null; stdout: string; stderr: string } {
  const [bash, ...args] = SPARE_ARGV
  const result = spawnSync(bash, args, { input, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/nonexistent' } })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

describe('spare launcher', () => {
  it('execs the argv exactly, arguments with spaces, newlines, quotes and backslashes included', () => {
    const args = ['a b', 'line1\nline2', '', "it's \"quoted\"", 'back\\slash', '$HOME', '-n']
    const { status, stdout } = launch(encodeSpareHeader(['printf', '[%s]', ...args]))
    expect(status).toBe(0)
    expect(stdout).toBe(args.map((a) => `[${a}]`).join(''))
  })

  it('leaves the rest of stdin, byte for byte, to the command', () => {
    const rest = Buffer.from('first line\n\0binary\xff\nlast', 'latin1')
    const result = spawnSync(SPARE_ARGV[0], SPARE_ARGV.slice(1), { input: Buffer.concat([encodeSpareHeader(['od', '-An', '-tx1']), rest]), env: { PATH: process.env.PATH, HOME: '/nonexistent' } })
    const hex = result.stdout.toString().split(/\s+/).filter(Boolean).join('')
    expect(hex).toBe(rest.toString('hex'))
  })

  it('passes the exit status through, and a bash command sees the shell level a direct exec gives it', () => {
    expect(launch(encodeSpareHeader(['sh', '-c', 'exit 42'])).status).toBe(42)
    expect(launch(encodeSpareHeader(['bash', '-c', 'echo "$SHLVL"'])).stdout.trim()).toBe('1')
  })

  it('exits 0 quietly when closed unused, and refuses a malformed header', () => {
    expect(launch(Buffer.alloc(0))).toMatchObject({ status: 0, stdout: '', stderr: '' })
    expect(launch(Buffer.from('x\n')).status).toBe(125)
  })

  it('refuses arguments it cannot carry', () => {
    expect(() => encodeSpareHeader([])).toThrow()
    expect(() => encodeSpareHeader(['a\0b'])).toThrow(/NUL/)
  })
})
