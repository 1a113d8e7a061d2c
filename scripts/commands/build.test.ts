import { describe, expect, it } from 'vitest'
import { checkBuildOptions, homeMode } from './build.ts'
import { ExitCode, UserError } from '../errors.ts'

describe('where build results end up', () => {
  it('comes home as ./result by default when this machine has Nix, as nix build does', () => {
    expect(homeMode({}, true)).toEqual({ kind: 'copy', link: 'result' })
    expect(homeMode({ outLink: 'out/hello' }, true)).toEqual({ kind: 'copy', link: 'out/hello' })
  })

  it('--no-link copies without a link; --remote-only leaves them in the pod', () => {
    expect(homeMode({ link: false }, true)).toEqual({ kind: 'copy' })
    expect(homeMode({ remoteOnly: true }, true)).toEqual({ kind: 'remote-only', reason: 'asked' })
  })

  it('without a local Nix: today\'s behaviour, with the reason', () => {
    expect(homeMode({}, false)).toEqual({ kind: 'remote-only', reason: 'no-local-nix' })
    expect(homeMode({ outLink: 'x' }, false)).toEqual({ kind: 'remote-only', reason: 'no-local-nix' })
  })

  it('refuses contradicting options as usage errors', () => {
    for (const args of [{ link: false, outLink: 'x' }, { remoteOnly: true, outLink: 'x' }, { remoteOnly: true, link: false }, { remoteOnly: true, checkSigs: false }]) {
      const error = (() => {
        try {
          checkBuildOptions(args)
        } catch (e) {
          return e
        }
      })() as UserError
      expect(error).toBeInstanceOf(UserError)
      expect(error.exitCode).toBe(ExitCode.usage)
    }
    expect(() => checkBuildOptions({ outLink: 'x', checkSigs: false })).not.toThrow()
  })
})
