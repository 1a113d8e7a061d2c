import { describe, expect, it } from 'vitest'
import { gcRootName, nixBuildArgv, parseBuildOutputs } from './build-args.ts'

const FEATURES = ['--extra-experimental-features', 'nix-command flakes']

describe('nixBuildArgv', () => {
  it('builds the default flake output, rooted as "default"', () => {
    expect(nixBuildArgv({ installables: [], passthrough: [] })).toEqual([
      'nix', ...FEATURES, 'build', '--json', '--out-link', '/nix/var/nix/gcroots/trampoline/default',
    ])
  })

  it('passes -f, installables, then everything after -- unchanged', () => {
    expect(nixBuildArgv({ file: 'release.nix', installables: ['hello', 'tests.unit'], passthrough: ['-L', '--option', 'cores', '2'] })).toEqual([
      'nix', ...FEATURES, 'build', '--json', '--out-link', '/nix/var/nix/gcroots/trampoline/release.nix+hello+tests.unit',
      '--file', 'release.nix', 'hello', 'tests.unit', '-L', '--option', 'cores', '2',
    ])
  })

  it('keeps flake references intact', () => {
    const argv = nixBuildArgv({ installables: ['.#packages.x86_64-linux.default'], passthrough: [] })
    expect(argv.slice(-1)).toEqual(['.#packages.x86_64-linux.default'])
  })
})

describe('gcRootName', () => {
  it.each([
    [{ installables: [] }, 'default'],
    [{ installables: ['.#hello'] }, 'hello'],
    [{ installables: ['#hello'] }, 'hello'],
    [{ installables: ['.'] }, 'default'],
    [{ installables: ['github:NixOS/nixpkgs#hello'] }, 'github_NixOS_nixpkgs_hello'],
    [{ file: 'nix/default.nix', installables: [] }, 'default.nix'],
    [{ file: './ci.nix', installables: ['a', 'b'] }, 'ci.nix+a+b'],
    [{ installables: ['/nix/store/abc-x'] }, 'nix_store_abc-x'],
  ])('%j is rooted as %s', (request, name) => {
    expect(gcRootName(request)).toBe(name)
  })

  it('stays a short single path component', () => {
    const name = gcRootName({ installables: ['x'.repeat(300), '../../etc/passwd'] })
    expect(name.length).toBeLessThanOrEqual(100)
    expect(name).not.toContain('/')
  })
})

describe('parseBuildOutputs', () => {
  it('reads derivation outputs and plain store paths (Nix 2.8 shapes)', () => {
    const json = JSON.stringify([
      { drvPath: '/nix/store/h0-a.drv', outputs: { out: '/nix/store/gg-a' } },
      { drvPath: '/nix/store/hf-b.drv', outputs: { out: '/nix/store/yb-b', dev: '/nix/store/zz-b-dev' } },
      { path: '/nix/store/cc-src' },
    ])
    expect(parseBuildOutputs(`${json}\n`)).toEqual(['/nix/store/gg-a', '/nix/store/yb-b', '/nix/store/zz-b-dev', '/nix/store/cc-src'])
  })

  it('gives nothing for empty or foreign output', () => {
    expect(parseBuildOutputs('')).toEqual([])
    expect(parseBuildOutputs('not json')).toEqual([])
    expect(parseBuildOutputs('{"a":1}')).toEqual([])
  })
})
