// A shell function for the scripts that serve Nix over an exec in the pod (exec-store/serve.ts,
// pod/daemon.ts's import): it runs a program with a watchdog. A client that ends without a
// word (SIGKILL, a dropped connection) never ends the program's stdin, and Kubernetes keeps
// an exec's process after its connection is gone: stuck, it would keep the pod busy for
// ever (the idle monitor counts execs). So the program is stopped once its I/O
// (/proc/PID/io) stood still for CHECKS checks EVERY seconds apart; a live copy moves bytes
// all the time.

/**
 * sh: `watched EVERY CHECKS PROGRAM...` runs PROGRAM on the shell's stdin, stops it when it
 * stalls (and says so on stderr), and returns its status.
 */
export const WATCHED_FUNCTION = [
  'watched() {',
  '  every=$1 checks=$2; shift 2',
  // A background job's stdin is /dev/null unless it is given one: keep ours on fd 3 for it.
  '  exec 3<&0',
  '  "$@" <&3 3<&- &',
  '  p=$!',
  '  exec 3<&-',
  '  (',
  // Its sleep goes with it, and holds none of the exec's pipes (they would end only after
  // it). A TERM that lands while the sleep is still being forked can be lost in the child:
  // then that sleep alone ends on its own, `every` seconds at most later.
  '    trap \'kill $! 2>/dev/null; exit 0\' TERM',
  '    last= still=0',
  '    while sleep "$every" </dev/null >/dev/null 2>&1 & wait $!; do',
  '      [ -r /proc/$p/io ] || exit 0',
  '      now=',
  '      while IFS= read -r l; do case $l in rchar:*|wchar:*) now="$now ${l#*: }";; esac; done </proc/$p/io',
  '      if [ "$now" = "$last" ]; then still=$((still + 1)); else still=0; last=$now; fi',
  '      if [ "$still" -ge "$checks" ]; then',
  '        echo "trampoline: $1 moved no byte in $checks checks $every s apart: its client is gone; stopping it" >&2',
  '        kill "$p"; exit 0',
  '      fi',
  '    done',
  '  ) <&- &',
  '  w=$!',
  '  wait "$p"; s=$?',
  '  kill "$w" 2>/dev/null',
  '  return "$s"',
  '}',
].join('\n')

/** The pace in use: a check every 5 s, and 10 minutes without a byte is a dead client. */
export const STALL_CHECK_SECONDS = 5
export const STALL_CHECKS = 120
