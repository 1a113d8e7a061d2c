// A spare: an exec of a small bash launcher in the user container, opened ahead of time,
// that waits on stdin for the argv of the next command and then execs it, so that the
// command starts without a new websocket, a new TLS connection and the kubelet's exec
// set-up (~100 ms here; a spare starts a command in ~15 ms). The command inherits the
// exec's stdin (everything after the argv), stdout, stderr and exit status, and runs
// with the container's environment like a direct exec.
//
// Header on stdin: the argument count, a newline, then each argument NUL-terminated
// (arguments cannot contain NUL). bash's `read` takes a pipe one byte at a time, so the
// launcher never eats into the command's own input.

/** bash: `read -d ''` splits on NUL. A spare closed unused (stdin EOF) exits 0 quietly. */
export const SPARE_LAUNCHER =
  'IFS= read -r n || exit 0; ' +
  'case $n in ""|*[!0-9]*) echo "trampoline mux: bad spare header" >&2; exit 125;; esac; ' +
  'set --; ' +
  'while [ "$n" -gt 0 ]; do IFS= read -r -d "" a || exit 0; set -- "$@" "$a"; n=$((n-1)); done; ' +
  // bash's exec lowers SHLVL again: a bash command sees the level a direct exec gives it.
  'unset n a; exec "$@"'

/** Its argv: `trampoline-mux-spare` is $0, what `status` and ps show for a waiting spare. */
export const SPARE_ARGV = ['bash', '-c', SPARE_LAUNCHER, 'trampoline-mux-spare']

/** A command that can travel as an argv: not empty, no NUL in any argument. */
export function checkArgv(command: string[]): void {
  if (command.length === 0) throw new Error('empty command')
  for (const arg of command) if (arg.includes('\0')) throw new Error('an argument contains a NUL byte')
}

export function encodeSpareHeader(command: string[]): Buffer {
  checkArgv(command)
  return Buffer.from(`${command.length}\n${command.map((a) => `${a}\0`).join('')}`, 'utf8')
}
