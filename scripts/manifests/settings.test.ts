import { describe, expect, it } from 'vitest'
import type { PodSettings } from './pod.ts'
import { DEFAULT_CACHE, describeChanges, isQuantity, parseCacheOptions, parseArch, parseIdleTimeout, parsePullPolicy, parseResource, parseSize, resolvePodSettings, resolveStoreSettings } from './settings.ts'

const defaults: PodSettings = {
  image: 'localhost/trampoline:test',
  pullPolicy: 'IfNotPresent',
  cpu: { request: '1' },
  memory: { request: '2Gi', limit: '8Gi' },
  idleTimeoutSeconds: 1800,
}

describe('option parsing', () => {
  it('reads REQUEST[:LIMIT]', () => {
    expect(parseResource('cpu', '4')).toEqual({ request: '4', limit: '4' })
    expect(parseResource('cpu', '500m:2')).toEqual({ request: '500m', limit: '2' })
    expect(parseResource('memory', '2Gi:')).toEqual({ request: '2Gi' })
  })

  it.each(['', 'four', '4:8:16', '-1', '4 cores', '8GB'])('rejects resource %j', (text) => {
    expect(() => parseResource('cpu', text)).toThrow(/--cpu .* is not REQUEST\[:LIMIT\]/)
  })

  it('knows Kubernetes quantities', () => {
    for (const q of ['1', '0.5', '250m', '8Gi', '100G', '1Ti']) expect(isQuantity(q)).toBe(true)
    for (const q of ['1.', 'Gi', '8 Gi', '8gb']) expect(isQuantity(q)).toBe(false)
  })

  it('reads sizes, which cannot be milli-units', () => {
    expect(parseSize('store-size', '50Gi')).toBe('50Gi')
    expect(() => parseSize('store-size', '500m')).toThrow(/--store-size/)
  })

  it('reads idle timeouts as durations, 0 meaning never', () => {
    expect(parseIdleTimeout('30m')).toBe(1800)
    expect(parseIdleTimeout('2h')).toBe(7200)
    expect(parseIdleTimeout('900s')).toBe(900)
    expect(parseIdleTimeout('0')).toBe(0)
    expect(() => parseIdleTimeout('forever')).toThrow(/--idle-timeout "forever" is not a duration/)
  })

  it('reads pull policies and architectures', () => {
    expect(parsePullPolicy('never')).toBe('Never')
    expect(() => parsePullPolicy('sometimes')).toThrow(/IfNotPresent, Never, Always/)
    expect(parseArch('arm64')).toBe('arm64')
    expect(() => parseArch('ARM 64')).toThrow(/--arch/)
  })
})

describe('resolvePodSettings', () => {
  const running: PodSettings = { ...defaults, image: 'ghcr.io/acme/t:2', cpu: { request: '8', limit: '8' }, arch: 'arm64' }

  it('starts from the template when there is no pod', () => {
    expect(resolvePodSettings({}, undefined, defaults)).toEqual(defaults)
  })

  it('keeps what the existing pod has for options not given', () => {
    expect(resolvePodSettings({}, running, defaults)).toEqual(running)
    expect(resolvePodSettings({ idleTimeoutSeconds: 0 }, running, defaults)).toEqual({ ...running, idleTimeoutSeconds: 0 })
  })

  it('lets given options win, and "any" architecture drop the selector', () => {
    const resolved = resolvePodSettings({ image: 'x:1', arch: '' }, running, defaults)
    expect(resolved.image).toBe('x:1')
    expect(resolved).not.toHaveProperty('arch')
  })
})

describe('resolveStoreSettings', () => {
  it('keeps an existing volume\'s size and class unless told', () => {
    expect(resolveStoreSettings({}, { size: '50Gi', storageClass: 'fast' }, { size: '20Gi' })).toEqual({ size: '50Gi', storageClass: 'fast' })
    expect(resolveStoreSettings({ size: '100Gi' }, undefined, { size: '20Gi' })).toEqual({ size: '100Gi' })
    expect(resolveStoreSettings({ storageClass: 'slow' }, undefined, { size: '20Gi' })).toEqual({ size: '20Gi', storageClass: 'slow' })
  })
})

describe('describeChanges', () => {
  it('lists only what differs, in words', () => {
    const after: PodSettings = { ...defaults, image: 'x:2', cpu: { request: '4', limit: '4' }, arch: 'arm64' }
    expect(describeChanges(defaults, after)).toEqual(['image localhost/trampoline:test -> x:2', 'cpu 1 (no limit) -> 4', 'arch any -> arm64'])
    expect(describeChanges(defaults, defaults)).toEqual([])
  })
})

describe('binary cache options', () => {
  const key = `cache.example.org-1:${Buffer.alloc(32, 7).toString('base64')}`

  it('leaves the pod\'s caches alone when no cache option is given', () => {
    expect(parseCacheOptions({})).toBeUndefined()
  })

  it('adds caches to cache.nixos.org, or replaces it with --no-default-cache', () => {
    expect(parseCacheOptions({ substituter: ['https://cache.example.org'], trustedPublicKey: [key] })).toEqual({
      substituters: [...DEFAULT_CACHE.substituters, 'https://cache.example.org'],
      trustedPublicKeys: [...DEFAULT_CACHE.trustedPublicKeys, key],
    })
    expect(parseCacheOptions({ substituter: ['http://10.0.0.1:8080'], trustedPublicKey: [key], defaultCache: false })).toEqual({
      substituters: ['http://10.0.0.1:8080'],
      trustedPublicKeys: [key],
    })
    expect(parseCacheOptions({ defaultCache: false })).toEqual({ substituters: [], trustedPublicKeys: [] })
  })

  it('refuses what is not a store URL or a Nix key', () => {
    expect(() => parseCacheOptions({ substituter: ['cache.example.org'] })).toThrow(/not a store URL/)
    expect(() => parseCacheOptions({ trustedPublicKey: ['cache.example.org-1:short'] })).toThrow(/not a Nix public key/)
  })

  it('keeps the running pod\'s caches unless new ones are given, and says when they change', () => {
    const mine = { substituters: ['http://c'], trustedPublicKeys: [key] }
    const running: PodSettings = { ...defaults, caches: mine }
    expect(resolvePodSettings({}, running, { ...defaults, caches: DEFAULT_CACHE }).caches).toEqual(mine)
    expect(resolvePodSettings({ caches: DEFAULT_CACHE }, running, defaults).caches).toEqual(DEFAULT_CACHE)
    expect(describeChanges(running, { ...running, caches: DEFAULT_CACHE })).toContain('binary caches http://c -> https://cache.nixos.org/')
  })
})
