// The `sh -c` calling convention, as agents and tools invoke a shell:
//   sh [-l] [-i] -c <command> [<name> [<arg>...]]
// Login and interactive flags are accepted and ignored (the pod's shell is neither);
// anything else is refused rather than half-honoured. Pure, so it is unit-tested.
import { ExitCode, UserError } from './errors.ts'

export interface ShInvocation {
  command: string
  /** $0 for the command, as `sh -c cmd name args...` sets it. */
  name?: string
  args: string[]
}

export const SH_USAGE = "usage: trampoline sh [-l] [-i] -c '<command>' [name [args...]]"

/** Flags shells commonly receive that make no difference to one command in the pod. */
const IGNORED_SHORT = new Set(['l', 'i'])
const IGNORED_LONG = new Set(['--login', '--noprofile', '--norc'])

function usageError(problem: string): UserError {
  return new UserError(`sh: ${problem}`, { hint: SH_USAGE, exitCode: ExitCode.usage })
}

export function parseShArgs(argv: string[]): ShInvocation {
  let commandMode = false
  let i = 0
  for (; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--' || arg === '-') {
      i++
      break
    }
    if (!arg.startsWith('-') || arg.length < 2) break
    if (arg.startsWith('--')) {
      if (IGNORED_LONG.has(arg)) continue
      throw usageError(`unsupported option ${arg}`)
    }
    for (const flag of arg.slice(1)) {
      if (flag === 'c') commandMode = true
      else if (!IGNORED_SHORT.has(flag)) throw usageError(`unsupported option -${flag}${arg.length > 2 ? ` (in ${arg})` : ''}`)
    }
  }
  if (!commandMode) throw usageError('only `sh -c <command>` is supported (for an interactive shell use: trampoline shell)')
  const [command, name, ...args] = argv.slice(i)
  if (command === undefined) throw usageError('-c requires a command string')
  return { command, name, args }
}

/**
 * Remote argv: a POSIX sh wrapper that enters the mapped directory, then the command in
 * bash (the pod's shell; agents write bash), with $0 and positional args as given.
 */
export function remoteShArgv(invocation: ShInvocation, cwd: string): string[] {
  const wrapper = 'cd -- "$1" 2>/dev/null || { echo "trampoline sh: no directory $1 in the pushed tree" >&2; exit 1; }; shift; exec bash -c "$@"'
  const positional = invocation.name === undefined ? [] : [invocation.name, ...invocation.args]
  return ['sh', '-c', wrapper, 'trampoline-sh', cwd, invocation.command, ...positional]
}

/**
 * yargs would take `-c`, `-v`, `--help`, `--json`... meant for the shell. Put `--` right
 * after the `sh` command word so everything after it reaches the command verbatim.
 * `valueOptions` are the global options that take a value (their value is not the command word).
 */
export function protectShArgs(argv: string[], valueOptions: ReadonlySet<string>): string[] {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--') return argv
    if (arg.startsWith('-')) {
      if (valueOptions.has(arg)) i++
      continue
    }
    if (arg !== 'sh') return argv
    const rest = argv.slice(i + 1)
    // `trampoline sh --help` shows help; an explicit `--` needs no second one.
    if (rest[0] === '--' || (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h'))) return argv
    return [...argv.slice(0, i + 1), '--', ...rest]
  }
  return argv
}
