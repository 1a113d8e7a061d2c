import { describe, expect, it } from 'vitest'
import { addRootsArgv, rootName, storePathOf } from './gc-roots.ts'

const HELLO = '/nix/store/il7l66zwfly8f0cq29inpj09hj54h4rc-hello-trampoline'

describe('storePathOf', () => {
  it('resolves ./result-style links to their top-level store path', () => {
    expect(storePathOf('./result', () => HELLO)).toBe(HELLO)
    expect(storePathOf('x', () => `${HELLO}/bin/hello`)).toBe(HELLO)
  })

  it('keeps a store path the local filesystem does not have', () => {
    const missing = () => {
      throw new Error('ENOENT')
    }
    expect(storePathOf(HELLO, missing)).toBe(HELLO)
  })

  it('gives nothing for installables and other paths', () => {
    const missing = () => {
      throw new Error('ENOENT')
    }
    expect(storePathOf('.#hello', missing)).toBeUndefined()
    expect(storePathOf('/tmp/file', (p) => p)).toBeUndefined()
    expect(storePathOf('/nix/store/short-name', (p) => p)).toBeUndefined()
  })
})

describe('GC roots in the pod', () => {
  it('names one root per kind and path', () => {
    expect(rootName('copied', HELLO)).toBe('copied-il7l66zwfly8f0cq29inpj09hj54h4rc-hello-trampoline')
    expect(rootName('flake', HELLO)).toBe('flake-il7l66zwfly8f0cq29inpj09hj54h4rc-hello-trampoline')
  })

  it('passes paths as arguments to a fixed script', () => {
    const argv = addRootsArgv('copied', [HELLO])
    expect(argv.slice(0, 2)).toEqual(['sh', '-c'])
    expect(argv[2]).not.toContain(HELLO)
    expect(argv.slice(3)).toEqual(['trampoline-roots', '/nix/var/nix/gcroots/trampoline', HELLO, rootName('copied', HELLO)])
  })
})

describe('push-flake roots', async () => {
  const { archivedPaths } = await import('../commands/push-flake.ts')
  it('roots the flake and every input, nested ones too', () => {
    const flake = {
      path: '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-source',
      inputs: {
        nixpkgs: { path: '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-source', inputs: {} },
        utils: {
          path: '/nix/store/cccccccccccccccccccccccccccccccc-source',
          inputs: { systems: { path: '/nix/store/dddddddddddddddddddddddddddddddd-source' } },
        },
      },
    }
    expect(archivedPaths(flake)).toEqual([
      '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-source',
      '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-source',
      '/nix/store/cccccccccccccccccccccccccccccccc-source',
      '/nix/store/dddddddddddddddddddddddddddddddd-source',
    ])
  })
})
