#!/usr/bin/env bash
# Idle shutdown for the pod. After TRAMPOLINE_IDLE_TIMEOUT seconds (0 = never) with no
# activity it asks the nix-daemon container to stop (/run/trampoline/shutdown), stops
# sshd and exits 0, so both containers end with `idle: <reason>` and the pod Succeeded.
#
# Activity = any process in this container beyond its baseline (PID 1, the sshd
# listener, this monitor): exec'd sessions (parent outside the PID namespace: ppid 0),
# authenticated SSH sessions (children of the listener; readiness probes and connections
# still authenticating are not: see scan), anything left running by them (re-parented to
# PID 1), plus a push within the timeout (mtime of $RUN/last-push). Agent sessions
# (Claude Code processes, however started: `trampoline claude`, ssh, tmux) are counted
# apart in "agents", for `trampoline status`.
#
#   shutdown-monitor.sh [--sshd-pid PID]  the monitor loop (started by entrypoint-user.sh)
#   shutdown-monitor.sh --check           print the current decision as JSON and exit:
#       {"idle":bool,"idleSeconds":n,"timeout":n,"active":["exec 12: bash",...],"agents":n,...}
# The loop writes the same JSON to $RUN/monitor.json every interval.
set -euo pipefail

RUN=${TRAMPOLINE_RUN_DIR:-/run/trampoline}
TIMEOUT=${TRAMPOLINE_IDLE_TIMEOUT:-1800}
INTERVAL=${TRAMPOLINE_MONITOR_INTERVAL:-10}
TERMINATION_LOG=${TRAMPOLINE_TERMINATION_LOG:-/dev/termination-log}
MODE=loop SSHD_PID=
# Where processes are read (a test points it at a made-up tree).
PROC=${TRAMPOLINE_PROC_DIR:-/proc}
while [ $# -gt 0 ]; do
  case $1 in
    --check) MODE=check ;;
    --sshd-pid) SSHD_PID=$2; shift ;;
    *) echo "shutdown-monitor: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "shutdown-monitor: TRAMPOLINE_IDLE_TIMEOUT must be whole seconds, got '$TIMEOUT'" >&2; exit 2; }
[[ $INTERVAL =~ ^[0-9]+$ ]] && [ "$INTERVAL" -gt 0 ] || INTERVAL=10

json_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "${s//[$'\001'-$'\037']/ }"
}

mtime() { stat -c %Y "$1" 2>/dev/null || echo 0; }

# is_agent ARGV0 ARGV1: a Claude Code process, as the native binary, a Nix wrapper, or a
# script run by an interpreter (npm's node install).
is_agent() {
  case ${1##*/} in
    claude|claude.exe|.claude-wrapped) return 0 ;;
    node|node[0-9]*|nodejs|bun|bash|sh)
      case $2 in claude|*/claude|*/.claude-wrapped|*/claude-code/cli.js) return 0 ;; esac ;;
  esac
  return 1
}

# Scan /proc without forking (a forked helper would itself look like a process), and
# fill ACTIVE with one entry per activity root and AGENTS with the number of agent
# sessions (agent processes not started by another one).
#
# SSH: every connection is a child of the listener from the moment it is accepted, long
# before it is a session: a readiness probe's connect + close, a client still
# authenticating (until LoginGraceTime), and, right after the accept, a child that
# re-executes sshd with -R and shows its raw argv for a few ms. Titles (cmdline, which
# sshd rewrites with setproctitle) are no way to tell these apart: their forms change
# between OpenSSH versions (sshd-session in 9.8+, sshd-auth in 10.x), and `USER [priv]`
# appears as soon as the user name arrives, before any key is checked. So a listener
# child counts as a session only once something exists below it that sshd starts after
# authentication alone:
#   - a process whose executable name (/proc/PID/stat's comm, which setproctitle leaves
#     alone) is not an sshd binary: the session's shell, command or subsystem. (Before
#     authentication sshd starts no other program: sshd_config sets no
#     AuthorizedKeysCommand nor AuthorizedPrincipalsCommand.)
#   - or an sshd process titled in the post-authentication form `NAME: USER` or
#     `NAME: USER@TTY` (`sshd: trampoline@notty`, `sshd-session: trampoline@pts/0`,
#     `sshd: trampoline@internal-sftp`), so that a forwarding-only session (`ssh -N`,
#     no command at all) or internal-sftp counts too. Every pre-authentication title has
#     a `[...]` part (`[accepted]`, `[net]`, `USER [priv]`, `USER [preauth]`) or is the
#     raw argv (`/usr/sbin/sshd -D ... -R`, no colon after its first word), and matches
#     neither.
is_sshd() { case $1 in sshd|sshd-session|sshd-auth|"$LISTENER_COMM") return 0 ;; esac; return 1; }
POSTAUTH_TITLE='^[^ :]+: [^][ ]+$'

scan() {
  local -A ppid=() cmd=() comm=() skip=() agent=() session=() title=()
  local d pid stat rest state argv q root parent depth listener monitor
  ACTIVE=() AGENTS=0
  for d in "$PROC"/[0-9]*; do
    pid=${d##*/}
    { read -r stat < "$d/stat"; } 2>/dev/null || continue
    rest=${stat##*) }
    state=${rest%% *}
    [ "$state" = Z ] && continue
    rest=${rest#* }
    ppid[$pid]=${rest%% *}
    # comm: between the first "(" and the last ") " (it may hold either itself).
    rest=${stat#*\(}
    comm[$pid]=${rest%") "*}
    argv=()
    { mapfile -d '' -t argv < "$d/cmdline"; } 2>/dev/null || true
    # A title set by setproctitle is padded with NULs: no empty words at the end.
    while [ ${#argv[@]} -gt 0 ] && [ -z "${argv[-1]}" ]; do unset 'argv[-1]'; done
    cmd[$pid]=${argv[*]:-?}
    if is_agent "${argv[0]:-}" "${argv[1]:-}"; then agent[$pid]=1; fi
  done
  for pid in "${!agent[@]}"; do
    q=${ppid[$pid]:-0} depth=0
    while [ "$q" != 0 ] && [ -z "${agent[$q]:-}" ] && [ $depth -lt 64 ]; do q=${ppid[$q]:-0}; depth=$((depth + 1)); done
    [ "$q" = 0 ] && AGENTS=$((AGENTS + 1))
  done
  listener=${SSHD_PID:-}
  if [ -z "$listener" ] && [ -r "$RUN/sshd/sshd.pid" ]; then read -r listener < "$RUN/sshd/sshd.pid" || true; fi
  LISTENER_COMM=
  [ -n "$listener" ] && LISTENER_COMM=${comm[$listener]:-}
  monitor=
  if [ "$MODE" = check ] && [ -r "$RUN/monitor.pid" ]; then read -r monitor < "$RUN/monitor.pid" || true; fi
  # Baseline: PID 1, the listener, and this process with its ancestors (a --check run
  # through `sh -c` must not count itself).
  skip[1]=1
  [ -n "$listener" ] && skip[$listener]=1
  q=$BASHPID depth=0
  while [ -n "${ppid[$q]:-}" ] && [ "$q" != 0 ] && [ $depth -lt 64 ]; do skip[$q]=1; q=${ppid[$q]}; depth=$((depth + 1)); done
  for pid in "${!ppid[@]}"; do
    [ -n "${skip[$pid]:-}" ] && continue
    # Walk up to the activity root: the process whose parent is outside the namespace
    # (0), PID 1 or the listener, or a parent that ended while this scan ran (no entry
    # read: gone, or a zombie). Anything under this monitor (its sleep) is baseline.
    q=$pid root='' depth=0
    while [ $depth -lt 64 ]; do
      if [ "$q" = "$BASHPID" ] || [ "$q" = "$monitor" ]; then root=; break; fi
      parent=${ppid[$q]:-0}
      if [ "$parent" = 0 ] || [ "$parent" = 1 ] || [ "$parent" = "$listener" ] || [ -z "${ppid[$parent]:-}" ]; then root=$q; break; fi
      q=$parent depth=$((depth + 1))
    done
    [ -n "$root" ] || continue
    [ -n "${skip[$root]:-}" ] && continue
    parent=${ppid[$root]:-0}
    case $parent in
      "$listener")
        # A connection: a session only with proof of authentication below it (above).
        if [[ ${cmd[$pid]} =~ $POSTAUTH_TITLE ]] && is_sshd "${comm[$pid]}"; then
          session[$root]=1 title[$root]=${cmd[$pid]}
        elif ! is_sshd "${comm[$pid]}"; then
          session[$root]=1
        fi
        continue ;;
      0) ACTIVE+=("exec $root: ${cmd[$root]:0:100}") ;;
      *) ACTIVE+=("process $root: ${cmd[$root]:0:100}") ;; # (a parent gone mid-scan too)
    esac
    skip[$root]=1
  done
  # One entry per session, under its connection's pid, named by its post-authentication
  # title when there is one (`ssh 41: sshd: trampoline@notty`).
  for root in "${!session[@]}"; do
    q=${title[$root]:-${cmd[$root]}}
    ACTIVE+=("ssh $root: ${q:0:100}")
  done
  return 0
}

# The decision: sets IDLE, IDLE_SECONDS and DECISION (the JSON line).
decide() {
  scan
  local now last push entries='' a
  now=$EPOCHSECONDS
  last=$(mtime "$RUN/last-active")
  push=$(mtime "$RUN/last-push")
  [ "$push" -gt "$last" ] && last=$push
  [ "$last" -gt 0 ] || last=$now
  if [ ${#ACTIVE[@]} -gt 0 ]; then IDLE_SECONDS=0; else IDLE_SECONDS=$(( now > last ? now - last : 0 )); fi
  IDLE=false
  if [ "$TIMEOUT" -gt 0 ] && [ ${#ACTIVE[@]} = 0 ] && [ "$IDLE_SECONDS" -ge "$TIMEOUT" ]; then IDLE=true; fi
  for a in ${ACTIVE[@]+"${ACTIVE[@]}"}; do entries+="${entries:+,}$(json_string "$a")"; done
  DECISION="{\"idle\":$IDLE,\"idleSeconds\":$IDLE_SECONDS,\"timeout\":$TIMEOUT,\"active\":[$entries],\"agents\":$AGENTS,\"lastPush\":$([ "$push" -gt 0 ] && echo "$push" || echo null),\"checkedAt\":$now}"
  return 0
}

if [ "$MODE" = check ]; then
  decide
  echo "$DECISION"
  exit 0
fi

mkdir -p "$RUN"
echo "$BASHPID" > "$RUN/monitor.pid"
touch "$RUN/last-active"
trap 'exit 0' TERM INT
echo "shutdown-monitor: idle timeout ${TIMEOUT}s$([ "$TIMEOUT" = 0 ] && echo ' (never)'), checking every ${INTERVAL}s" >&2
while :; do
  decide
  [ ${#ACTIVE[@]} -gt 0 ] && touch "$RUN/last-active"
  printf '%s\n' "$DECISION" > "$RUN/monitor.json.tmp" && mv -f "$RUN/monitor.json.tmp" "$RUN/monitor.json"
  if [ "$IDLE" = true ]; then
    reason="idle: no activity for ${IDLE_SECONDS}s (timeout ${TIMEOUT}s)"
    # The daemon container watches for this file; write it whole.
    printf '%s\n' "$reason" > "$RUN/shutdown.tmp" && mv -f "$RUN/shutdown.tmp" "$RUN/shutdown"
    printf '%s\n' "$reason" > "$TERMINATION_LOG" 2>/dev/null || true
    echo "shutdown-monitor: $reason; stopping" >&2
    listener=${SSHD_PID:-$(cat "$RUN/sshd/sshd.pid" 2>/dev/null || true)}
    [ -n "$listener" ] && kill -TERM "$listener" 2>/dev/null || true
    exit 0
  fi
  sleep "$INTERVAL" & wait $! || true
done
