// What Nix asks of `ssh` when it opens an ssh-ng:// or ssh:// store, read back from the
// argv it passes (libstore's SSHMaster), so that the exec store (shim.ts) can stand in for
// ssh: `HOST -x [-a] [options] [--] COMMAND` runs COMMAND there, `-O check HOST` asks for a
// master connection. Nix before 2.19 passes the command as one string, later ones as words
// after `--`, and from 2.20 or so ssh must print "started" (its LocalCommand) before Nix
// reads anything. Pure, so it is unit-tested.

/** The store programs Nix runs on the far side; nothing else runs through the exec store. */
export const STORE_PROGRAMS: readonly (readonly string[])[] = [
  ['nix-daemon', '--stdio'],
  ['nix-store', '--serve'],
  ['nix-store', '--serve', '--write'],
]

/** The option by which Nix asks ssh to print "started" (its LocalCommand) once connected. */
export const ANNOUNCE = '-oLocalCommand=echo started'

export type SshInvocation =
  /** `ssh -O check HOST`: is a master connection running? There never is one. */
  | { kind: 'master-check' }
  /** Run this store program in the pod; `announce`: print "started" first, as ssh's LocalCommand would. */
  | { kind: 'command'; command: string[]; announce: boolean }
  | { kind: 'refused'; why: string }

export function readSshInvocation(argv: readonly string[], host: string): SshInvocation {
  if (argv[0] === '-O') {
    if (argv[1] === 'check' && argv[2] === host) return { kind: 'master-check' }
    return { kind: 'refused', why: `ssh -O ${argv[1] ?? ''} ${argv[2] ?? ''}: only "check" of ${host} is known` }
  }
  if (argv[0] !== host) return { kind: 'refused', why: `ssh to ${argv[0] ?? '(no host)'}: this stands in for ssh to ${host} only` }
  if (argv.includes('-M')) return { kind: 'refused', why: 'an ssh master connection (Nix uses one only with max-connections above 1)' }
  const separator = argv.indexOf('--')
  const words = separator >= 0 ? argv.slice(separator + 1) : (argv.at(-1) ?? '').split(/\s+/).filter(Boolean)
  const program = STORE_PROGRAMS.find((p) => p.length === words.length && p.every((word, i) => word === words[i]))
  if (!program || argv.length < 2) return { kind: 'refused', why: `"${words.join(' ')}" is not a Nix store program (${STORE_PROGRAMS.map((p) => p.join(' ')).join(', ')})` }
  return { kind: 'command', command: [...program], announce: argv.includes(ANNOUNCE) }
}
