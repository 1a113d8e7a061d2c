import { describe, expect, it } from 'vitest'
import { ExitCode, formatError, RemoteExit, UserError } from './errors.ts'

describe('formatError', () => {
  it('prints a user error with its hint and exit code', () => {
    const error = new UserError('pod trampoline-x is not running', { hint: 'Run: trampoline setup', exitCode: ExitCode.notFound })
    expect(formatError(error)).toEqual({ text: 'trampoline: pod trampoline-x is not running\n  Run: trampoline setup', exitCode: 5 })
  })

  it('defaults a user error to exit code 1 and no hint line', () => {
    expect(formatError(new UserError('nope'))).toEqual({ text: 'trampoline: nope', exitCode: 1 })
  })

  it('passes a remote exit code through silently', () => {
    expect(formatError(new RemoteExit(42))).toEqual({ text: '', exitCode: 42 })
  })

  it('reports anything else as an internal error with the stack', () => {
    const { text, exitCode } = formatError(new TypeError('x is undefined'))
    expect(exitCode).toBe(ExitCode.internal)
    expect(text).toMatch(/^trampoline: internal error \(please report it\):\nTypeError: x is undefined\n\s+at /)
    expect(formatError('a string').text).toContain('a string')
  })
})
