import { describe, expect, it } from 'vitest'
import { gcRootName, localEvalArgv, nixBuildArgv, outLinks, parseBuildOutputs, parseBuildResults, podRootArgv, podRootLinks } from './build-args.ts'

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

describe('parseBuildResults', () => {
  it('keeps each installable apart, with its outputs by name', () => {
    const json = JSON.stringify([
      { drvPath: '/nix/store/h0-a.drv', outputs: { out: '/nix/store/gg-a' } },
      { path: '/nix/store/cc-src' },
      { drvPath: '/nix/store/hf-b.drv', outputs: { out: '/nix/store/yb-b', dev: '/nix/store/zz-b-dev', bad: 3 } },
      { drvPath: '/nix/store/x.drv' },
    ])
    expect(parseBuildResults(`building...\n${json}`)).toEqual([
      { outputs: { out: '/nix/store/gg-a' } },
      { path: '/nix/store/cc-src' },
      { outputs: { out: '/nix/store/yb-b', dev: '/nix/store/zz-b-dev' } },
    ])
  })
})

describe('outLinks: nix build\'s naming', () => {
  it('one derivation: result', () => {
    expect(outLinks('result', [{ outputs: { out: '/nix/store/a-x' } }])).toEqual([{ link: 'result', path: '/nix/store/a-x' }])
  })

  it('several outputs: result-<output> for all but out, in sorted order', () => {
    expect(outLinks('result', [{ outputs: { out: '/nix/store/a-x', man: '/nix/store/m-x-man', dev: '/nix/store/d-x-dev' } }])).toEqual([
      { link: 'result-dev', path: '/nix/store/d-x-dev' },
      { link: 'result-man', path: '/nix/store/m-x-man' },
      { link: 'result', path: '/nix/store/a-x' },
    ])
  })

  it('several installables: result, result-1, result-2-dev; store paths as they are', () => {
    expect(
      outLinks('out/r', [{ outputs: { out: '/nix/store/a' } }, { path: '/nix/store/p' }, { outputs: { dev: '/nix/store/d', out: '/nix/store/o' } }]),
    ).toEqual([
      { link: 'out/r', path: '/nix/store/a' },
      { link: 'out/r-1', path: '/nix/store/p' },
      { link: 'out/r-2-dev', path: '/nix/store/d' },
      { link: 'out/r-2', path: '/nix/store/o' },
    ])
  })

  it('a derivation without an out output gets only suffixed links', () => {
    expect(outLinks('result', [{ outputs: { bin: '/nix/store/b' } }])).toEqual([{ link: 'result-bin', path: '/nix/store/b' }])
  })
})

describe('pod roots for a local evaluation', () => {
  it('are the links a build in the pod would have made', () => {
    const links = podRootLinks({ file: 'hello.nix', installables: [] }, [{ outputs: { out: '/nix/store/a-hello' } }, { path: '/nix/store/b-src' }])
    expect(links).toEqual([
      { link: '/nix/var/nix/gcroots/trampoline/hello.nix', path: '/nix/store/a-hello' },
      { link: '/nix/var/nix/gcroots/trampoline/hello.nix-1', path: '/nix/store/b-src' },
    ])
    const argv = podRootArgv(links)
    expect(argv.slice(0, 2)).toEqual(['sh', '-c'])
    // Paths and names travel as arguments, never inside the script.
    expect(argv[2]).not.toContain('/nix/store')
    expect(argv.slice(4)).toEqual(['/nix/store/a-hello', '/nix/var/nix/gcroots/trampoline/hello.nix', '/nix/store/b-src', '/nix/var/nix/gcroots/trampoline/hello.nix-1'])
  })
})

describe('localEvalArgv', () => {
  it('evaluates here, builds in the pod\'s store, no local link, JSON for Nix 2.8', () => {
    expect(localEvalArgv({ file: 'x.nix', installables: ['a'], passthrough: ['-L'], store: 'ssh-ng://trampoline-x' })).toEqual([
      ...FEATURES, 'build', '--json', '--no-link', '--store', 'ssh-ng://trampoline-x', '--eval-store', 'auto', '--file', 'x.nix', 'a', '-L',
    ])
  })

  it('evaluates for the pod\'s system when it differs (and so picks packages.<pod system>.default)', () => {
    const argv = localEvalArgv({ installables: [], passthrough: [], store: 'ssh-ng://trampoline-x', system: 'aarch64-linux' })
    expect(argv.slice(argv.indexOf('--option'), argv.indexOf('--option') + 3)).toEqual(['--option', 'system', 'aarch64-linux'])
    expect(argv).not.toContain('--print-out-paths')
  })
})
