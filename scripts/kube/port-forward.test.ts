import { describe, expect, it } from 'vitest'
import { isCleanClose, TunnelLostError } from './port-forward.ts'

describe('tunnel close codes', () => {
  it('a close frame ends the stream; a dropped connection does not', () => {
    expect(isCleanClose(1000)).toBe(true)
    expect(isCleanClose(1005)).toBe(true)
    expect(isCleanClose(1006)).toBe(false)
    expect(isCleanClose(1011)).toBe(false)
  })

  it('a lost tunnel says the connection to the cluster was cut', () => {
    expect(new TunnelLostError(1006, '').message).toBe('the connection to the cluster was cut (websocket closed with 1006)')
    expect(new TunnelLostError(1011, 'internal error').message).toContain('1011: internal error')
  })
})
