import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { parseShArgs, protectShArgs, remoteShArgv } from './sh-args.ts'
import { remoteCwd } from './workspace.ts'
import { ExitCode, UserError } from './errors.ts'

describe('parseShArgs', () => {
  it.each([
    [['-c', 'echo hi'], { command: 'echo hi', name: undefined, args: [] }],
    [['-c', 'echo "$@"', 'name', 'a', 'b'], { command: 'echo "$@"', name: 'name', args: ['a', 'b'] }],
    // How Claude Code and friends call a shell.
    [['-c', '-l', 'ls'], { command: 'ls', name: undefined, args: [] }],
    [['-l', '-c', 'ls'], { command: 'ls', name: undefined, args: [] }],
    [['-lc', 'ls'], { command: 'ls', name: undefined, args: [] }],
    [['-ic', 'ls'], { command: 'ls', name: undefined, args: [] }],
    [['-cli', 'ls'], { command: 'ls', name: undefined, args: [] }],
    [['--login', '-c', 'ls'], { command: 'ls', name: undefined, args: [] }],
    // Options end at the command string: later dashes belong to the command.
    [['-c', 'ls', '-c', '--json', '-x'], { command: 'ls', name: '-c', args: ['--json', '-x'] }],
    [['-c', '--', '-weird'], { command: '-weird', name: undefined, args: [] }],
    [['-c', ''], { command: '', name: undefined, args: [] }],
  ])('%j', (argv, expected) => {
    expect(parseShArgs(argv)).toEqual(expected)
  })

  it.each([
    [['-e', '-c', 'ls'], /unsupported option -e/],
    [['-ec', 'ls'], /unsupported option -e \(in -ec\)/],
    [['-o', 'pipefail', '-c', 'ls'], /unsupported option -o/],
    [['--posix', '-c', 'ls'], /unsupported option --posix/],
    [['script.sh'], /only `sh -c <command>`/],
    [[], /only `sh -c <command>`/],
    [['-l'], /only `sh -c <command>`/],
    [['-c'], /requires a command string/],
  ])('refuses %j', (argv, message) => {
    try {
      parseShArgs(argv)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(UserError)
      expect((error as UserError).message).toMatch(message)
      expect((error as UserError).exitCode).toBe(ExitCode.usage)
      expect((error as UserError).hint).toMatch(/trampoline sh .*-c/)
    }
  })
})

describe('remoteCwd', () => {
  it.each([
    ['/home/me/proj', '/workspace/src'],
    ['/home/me/proj/src/lib', '/workspace/src/src/lib'],
    ['/home/me/proj/..hidden', '/workspace/src/..hidden'],
    ['/home/me/project2', undefined],
    ['/home/me', undefined],
    ['/tmp', undefined],
  ])('%s -> %s', (cwd, expected) => {
    expect(remoteCwd('/home/me/proj', cwd)).toBe(expected)
  })
})

describe('remoteShArgv', () => {
  // Run the wrapper with a local sh (bash stands in for the pod's) to check the quoting.
  const runLocally = (argv: string[]) => execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })

  it('runs the command in the mapped directory with $0 and arguments intact', () => {
    const argv = remoteShArgv({ command: 'printf "%s|" "$0" "$@" "$(pwd)"', name: 'my name', args: ['a b', '$HOME', "'q'"] }, '/tmp')
    expect(runLocally(argv)).toBe("my name|a b|$HOME|'q'|/tmp|")
  })

  it('leaves $0 to bash without a name', () => {
    expect(runLocally(remoteShArgv({ command: 'echo "$#"', args: [] }, '/'))).toBe('0\n')
  })

  it('passes the exit code through', () => {
    expect(() => runLocally(remoteShArgv({ command: 'exit 42', args: [] }, '/'))).toThrow(expect.objectContaining({ status: 42 }))
  })

  it('says which directory is missing', () => {
    expect(() => runLocally(remoteShArgv({ command: 'true', args: [] }, '/no/such/dir'))).toThrow(
      expect.objectContaining({ status: 1, stderr: expect.stringMatching(/no directory \/no\/such\/dir in the pushed tree/) }),
    )
  })
})

describe('protectShArgs', () => {
  const VALUE_OPTIONS = new Set(['--kubeconfig', '--context', '--namespace', '-n', '--name'])
  it.each([
    [['sh', '-c', 'ls', 'x', '--json', '-v', '--help'], ['sh', '--', '-c', 'ls', 'x', '--json', '-v', '--help']],
    [['--name', 'sh', 'sh', '-lc', 'ls'], ['--name', 'sh', 'sh', '--', '-lc', 'ls']],
    [['-n', 'ns', '--json', 'sh', '-c', 'ls'], ['-n', 'ns', '--json', 'sh', '--', '-c', 'ls']],
    [['--name=x', 'sh', '-c', 'ls'], ['--name=x', 'sh', '--', '-c', 'ls']],
    // Left alone: other commands, an explicit --, help for sh.
    [['shell', '--', 'sh', '-c', 'ls'], ['shell', '--', 'sh', '-c', 'ls']],
    [['build', 'sh'], ['build', 'sh']],
    [['sh', '--', '-c', 'ls'], ['sh', '--', '-c', 'ls']],
    [['sh', '--help'], ['sh', '--help']],
    [['sh'], ['sh', '--']],
    [[], []],
  ])('%j -> %j', (argv, expected) => {
    expect(protectShArgs(argv, VALUE_OPTIONS)).toEqual(expected)
  })
})
