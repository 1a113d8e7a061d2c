import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type WebSocket from 'ws'
import { writeWithBackpressure } from './channel.ts'

/** The part of a ws socket the backpressure uses: pause, resume, isPaused. */
function fakeWs(): { ws: WebSocket; pauses: () => number } {
  let paused = false
  let pauses = 0
  const ws = {
    get isPaused() {
      return paused
    },
    pause() {
      paused = true
      pauses++
    },
    resume() {
      paused = false
    },
  } as unknown as WebSocket
  return { ws, pauses: () => pauses }
}

describe('writeWithBackpressure', () => {
  it('pauses once for a full target, however many frames still arrive, and resumes on its drain', async () => {
    const held: Array<() => void> = []
    const slow = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, callback) {
        held.push(callback)
      },
    })
    const { ws, pauses } = fakeWs()
    for (let i = 0; i < 20; i++) writeWithBackpressure({ ws }, slow, Buffer.from('x'))
    expect(ws.isPaused).toBe(true)
    expect(pauses()).toBe(1)
    expect(slow.listenerCount('drain')).toBe(1)
    while (held.length) {
      held.shift()!()
      await new Promise((resolve) => setImmediate(resolve))
    }
    expect(ws.isPaused).toBe(false)
  })
})
