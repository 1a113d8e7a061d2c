import { describe, expect, it } from 'vitest'
import { exitCodeForSignal } from './session.ts'

describe('exitCodeForSignal', () => {
  it('follows the shell convention of 128 + the signal number', () => {
    expect(exitCodeForSignal('KILL')).toBe(137)
    expect(exitCodeForSignal('TERM')).toBe(143)
    expect(exitCodeForSignal('INT')).toBe(130)
  })

  it('falls back to 255 for an unknown or missing signal', () => {
    expect(exitCodeForSignal('NOPE')).toBe(255)
    expect(exitCodeForSignal(undefined)).toBe(255)
  })
})
