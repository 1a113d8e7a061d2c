import { describe, expect, it } from 'vitest'
import { Channel, decodeFrame, encodeClose, encodeFrame, encodeResize, execQuery, exitCodeFromStatus, portFromHeader, supportsStdinClose } from './frames.ts'

describe('frames', () => {
  it('prefixes the payload with the channel byte, and decodes back', () => {
    const frame = encodeFrame(Channel.stdin, 'hi')
    expect([...frame]).toEqual([0, 0x68, 0x69])
    const { channel, payload } = decodeFrame(encodeFrame(Channel.stderr, Buffer.from([1, 2, 255])))
    expect(channel).toBe(2)
    expect([...payload]).toEqual([1, 2, 255])
  })

  it('encodes an empty payload as the channel byte alone', () => {
    expect([...encodeFrame(Channel.stdout, '')]).toEqual([1])
  })

  it('closes a channel with the v5 close frame', () => {
    expect([...encodeClose(Channel.stdin)]).toEqual([255, 0])
    expect(supportsStdinClose('v5.channel.k8s.io')).toBe(true)
    expect(supportsStdinClose('v4.channel.k8s.io')).toBe(false)
  })

  it('sends terminal sizes as JSON on the resize channel', () => {
    const { channel, payload } = decodeFrame(encodeResize(120, 40))
    expect(channel).toBe(Channel.resize)
    expect(JSON.parse(payload.toString())).toEqual({ Width: 120, Height: 40 })
  })
})

describe('exitCodeFromStatus', () => {
  it('is 0 for Success', () => {
    expect(exitCodeFromStatus({ status: 'Success', metadata: {} } as never)).toEqual({ exitCode: 0 })
  })

  it('reads the ExitCode cause of NonZeroExitCode', () => {
    const status = {
      status: 'Failure',
      reason: 'NonZeroExitCode',
      message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    }
    expect(exitCodeFromStatus(status)).toEqual({ exitCode: 3 })
  })

  it('reports failures without an exit code with their message', () => {
    const status = { status: 'Failure', reason: 'InternalError', message: 'container not found ("user")' }
    expect(exitCodeFromStatus(status)).toEqual({ exitCode: 126, message: 'container not found ("user")' })
    expect(exitCodeFromStatus({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [] } })).toEqual({ exitCode: 126, message: 'NonZeroExitCode' })
  })
})

describe('portFromHeader', () => {
  it('reads the little-endian port of a port-forward channel header', () => {
    expect(portFromHeader(Buffer.from([0xae, 0x08]))).toBe(2222)
    expect(portFromHeader(Buffer.from([0x16, 0x00, 0x53, 0x53]))).toBe(22)
    expect(portFromHeader(Buffer.from([7]))).toBeUndefined()
  })
})

describe('execQuery', () => {
  it('repeats command once per argv element, keeping spaces inside arguments', () => {
    const query = new URLSearchParams(execQuery({ container: 'user', command: ['sh', '-c', 'echo a b'], stdin: true, tty: false }))
    expect(query.getAll('command')).toEqual(['sh', '-c', 'echo a b'])
    expect(query.get('container')).toBe('user')
    expect(query.get('stdin')).toBe('true')
    expect(query.get('stdout')).toBe('true')
    expect(query.get('stderr')).toBe('true')
    expect(query.get('tty')).toBe('false')
  })

  it('turns stderr off with a tty (it is merged into stdout)', () => {
    const query = new URLSearchParams(execQuery({ container: 'user', command: ['bash'], stdin: true, tty: true }))
    expect(query.get('stderr')).toBe('false')
    expect(query.get('tty')).toBe('true')
  })
})
