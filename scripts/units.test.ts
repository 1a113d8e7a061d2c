import { describe, expect, it } from 'vitest'
import { formatBytes, formatDuration, parseDuration } from './units.ts'

describe('parseDuration', () => {
  it.each([
    ['0', 0],
    ['900', 900],
    ['900s', 900],
    ['30m', 1800],
    ['2h', 7200],
    ['1h30m', 5400],
    ['1d', 86400],
  ])('%s is %i seconds', (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds)
  })

  it.each(['', 'soon', '10x', '5m later', '-5m'])('rejects %j', (text) => {
    expect(() => parseDuration(text)).toThrow(/not a duration/)
  })
})

describe('formatting', () => {
  it('formats bytes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1536)).toBe('1.5 KiB')
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MiB')
  })

  it('formats durations compactly', () => {
    expect(formatDuration(42)).toBe('42s')
    expect(formatDuration(125)).toBe('2m')
    expect(formatDuration(3 * 3600 + 600)).toBe('3h10m')
    expect(formatDuration(5 * 86400)).toBe('5d')
    expect(formatDuration(-1)).toBe('-')
  })
})
