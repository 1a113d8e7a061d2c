import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { remoteShellArgv } from './shell.ts'

// The wrapper runs in the pod's sh; a local sh checks its quoting and fallbacks.
const runLocally = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: '/tmp', ...env } })

describe('remoteShellArgv', () => {
  it('defaults to a login shell in the pushed tree', () => {
    expect(remoteShellArgv([], 'xterm-256color')).toEqual([
      'sh', '-c', expect.any(String), 'trampoline-shell', '/workspace/src', 'xterm-256color', 'bash', '-l',
    ])
  })

  it('runs argv as given, in home when nothing was pushed, with TERM set for a terminal', () => {
    const argv = remoteShellArgv(['sh', '-c', 'printf "%s|" "$(pwd)" "$TERM" "$1"', 'x', 'a b'], 'screen')
    expect(runLocally(argv)).toBe('/tmp|screen|a b|')
  })

  it('leaves TERM alone without a terminal', () => {
    expect(runLocally(remoteShellArgv(['sh', '-c', 'echo "${TERM-unset}"'], undefined))).toBe('unset\n')
  })
})
