import { describe, expect, it } from 'vitest'
import type { Selection } from '../kube/kubeconfig.ts'
import { MAX_SOCKET_PATH, fallbackSocketDir, muxDisabledByEnv, muxIdentity, muxKey, muxSocketPath } from './key.ts'

const selection = (overrides: Partial<Selection> = {}): Selection => ({
  contextName: 'ctx',
  context: { cluster: 'c', user: 'u' },
  clusterName: 'c',
  cluster: { server: 'https://a:6443', 'certificate-authority': '/ca.crt' },
  userName: 'u',
  user: { 'client-certificate': '/u.crt', 'client-key': '/u.key' },
  ...overrides,
})
const where = { server: 'https://a:6443', namespace: 'ns', instance: 'web', pod: 'trampoline-web', version: '0.1.0' }
const files: Record<string, string> = { '/ca.crt': 'CA', '/u.crt': 'CERT', '/u.key': 'KEY' }
const read = (path: string) => {
  if (!(path in files)) throw Object.assign(new Error('nope'), { code: 'ENOENT' })
  return Buffer.from(files[path])
}
const key = (s = selection(), w = where, r = read) => muxKey(muxIdentity(s, w, r))

describe('mux key', () => {
  it('is stable for the same identity, whatever the key order of the entries', () => {
    const reordered = selection({ cluster: { 'certificate-authority': '/ca.crt', server: 'https://a:6443' } })
    expect(key()).toBe(key(reordered))
    expect(key()).toMatch(/^[0-9a-f]{24}$/)
  })

  it('changes with the server, context, user, credentials, namespace, instance and version', () => {
    const base = key()
    const changed = [
      key(selection(), { ...where, server: 'https://b:6443' }),
      key(selection({ contextName: 'other' })),
      key(selection({ userName: 'v' })),
      key(selection({ user: { token: 'abc' } })),
      key(selection(), { ...where, namespace: 'ns2' }),
      key(selection(), { ...where, instance: 'api', pod: 'trampoline-api' }),
      key(selection(), { ...where, version: '0.2.0' }),
      // A rotated certificate file, same path.
      key(selection(), where, (path) => (path === '/u.crt' ? Buffer.from('NEW CERT') : read(path))),
    ]
    for (const other of changed) expect(other).not.toBe(base)
    expect(new Set(changed).size).toBe(changed.length)
  })

  it('hashes an unreadable credential file by its error instead of failing', () => {
    expect(() => key(selection({ user: { 'token-file': '/missing' } }))).not.toThrow()
  })
})

describe('mux socket path', () => {
  it('lives in the instance state dir when it fits in sun_path', () => {
    expect(muxSocketPath('/home/me/.local/state/trampoline/ctx/ns/web', 'abc', '/run/user/1000/trampoline-mux-1000')).toEqual({
      path: '/home/me/.local/state/trampoline/ctx/ns/web/mux-abc.sock',
      fallback: false,
    })
  })

  it('falls back to a private runtime dir when the state path is too long', () => {
    const long = `/home/me/.local/state/trampoline/${'arn_aws_eks_us-east-1_123456789012_cluster_'.repeat(2)}/ns/web`
    const { path, fallback } = muxSocketPath(long, '0123456789abcdef01234567', '/run/user/1000/trampoline-mux-1000')
    expect(fallback).toBe(true)
    expect(path).toBe('/run/user/1000/trampoline-mux-1000/0123456789abcdef01234567.sock')
    expect(Buffer.byteLength(path)).toBeLessThanOrEqual(MAX_SOCKET_PATH)
  })

  it('prefers $XDG_RUNTIME_DIR, else the temp dir, named by uid', () => {
    expect(fallbackSocketDir({ XDG_RUNTIME_DIR: '/run/user/7' }, '/tmp', 7)).toBe('/run/user/7/trampoline-mux-7')
    expect(fallbackSocketDir({}, '/tmp', 7)).toBe('/tmp/trampoline-mux-7')
  })
})

describe('TRAMPOLINE_MUX', () => {
  it('turns the helper off with 0/off/false/no only', () => {
    for (const value of ['0', 'off', 'FALSE', 'no']) expect(muxDisabledByEnv({ TRAMPOLINE_MUX: value })).toBe(true)
    for (const value of [undefined, '', '1', 'on']) expect(muxDisabledByEnv({ TRAMPOLINE_MUX: value })).toBe(false)
  })
})
