import { describe, expect, it } from 'vitest'
import { parseFarmOptions, parseSettingOptions } from './setup.ts'

describe('parseSettingOptions', () => {
  it('leaves out what was not given', () => {
    expect(parseSettingOptions({})).toEqual({ image: undefined, pullPolicy: undefined, cpu: undefined, memory: undefined, arch: undefined, idleTimeoutSeconds: undefined })
  })

  it('parses what was given, and makes bad values usage errors', () => {
    expect(parseSettingOptions({ cpu: '2:', idleTimeout: '2h', arch: 'any', pullPolicy: 'Never' })).toMatchObject({ cpu: { request: '2' }, idleTimeoutSeconds: 7200, arch: '', pullPolicy: 'Never' })
    expect(() => parseSettingOptions({ memory: 'lots' })).toThrow(expect.objectContaining({ exitCode: 2 }))
  })
})

describe('build farm options', () => {
  it('parses --workers, --worker-cpu, --worker-memory and repeatable --worker-arch', () => {
    expect(parseFarmOptions({})).toEqual({ workers: undefined, cpu: undefined, memory: undefined, arches: undefined })
    expect(parseFarmOptions({ workers: 2, workerCpu: '100m:', workerMemory: '1Gi:4Gi', workerArch: ['amd64', 'arm64,amd64'] })).toEqual({
      workers: 2,
      cpu: { request: '100m' },
      memory: { request: '1Gi', limit: '4Gi' },
      arches: ['amd64', 'arm64', 'amd64'],
    })
  })

  it('refuses bad values as usage errors', () => {
    expect(() => parseFarmOptions({ workers: -1 })).toThrow(/--workers/)
    expect(() => parseFarmOptions({ workers: 1.5 })).toThrow(/--workers/)
    expect(() => parseFarmOptions({ workerCpu: 'lots' })).toThrow(/--worker-cpu/)
    expect(() => parseFarmOptions({ workerArch: ['ARM 64'] })).toThrow(/--worker-arch/)
  })
})
