import { describe, expect, it } from 'vitest'
import { formatLogTail } from './wait.ts'

describe('formatLogTail', () => {
  it('indents the last lines under the error', () => {
    expect(formatLogTail('one\ntwo\nthree\n', 2)).toBe('    | two\n    | three')
  })

  it('keeps blank lines inside, drops trailing ones, and is empty for no output', () => {
    expect(formatLogTail('a\n\nb\n\n\n')).toBe('    | a\n    | \n    | b')
    expect(formatLogTail('')).toBe('')
    expect(formatLogTail('\n\n')).toBe('')
  })
})
