# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034,SC2164 # tramp, pod_options, node_bin come from test.sh; cd failures fail the journey under set -e
# The mux helper (scripts/mux/) against the real cluster, sourced by test.sh:
#
#   mux_journey WORK --name INSTANCE -n NAMESPACE
#
# On an instance of its own (INSTANCE-mx: it deletes and recreates its pod), with its own
# local state (XDG_STATE_HOME under WORK), and compared with --no-mux wherever a result
# could differ:
#   1. the first command starts the helper: a 0600 socket in a 0700 directory (the state dir,
#      or a private runtime dir when that path is too long for a socket);
#      later commands reuse it (same helper process)
#   2. exit codes, stdout and stderr apart, stdin (lines and 1 MiB of binary), no command,
#      a script on stdin: the same as without the helper
#   3. Ctrl-C: the command's process ends like the direct path's (130), the helper serves on
#   4. a stale socket (the helper killed with SIGKILL) is replaced by a new helper
#   5. a changed kubeconfig (same context name, another server) never reaches the old
#      helper: it gets an answer of its own (here: the cluster cannot be reached, exit 3)
#   6. the pod deleted: the same error as without the helper (no pod, exit 5) and the helper
#      ends; the pod recreated (new UID): commands run in the new pod
#   7. TRAMPOLINE_MUX=0 and --no-mux start no helper; TRAMPOLINE_MUX_IDLE ends an idle one,
#      also after a client killed while its stdin backed up
#   8. clean (the state dir goes) ends the helper

mux_journey() {
  local work=$1/mux
  shift
  local namespace name
  namespace=$(journey_arg -n "$@")
  name=$(journey_arg --name "$@")-mx
  local args=(--name "$name" -n "$namespace")
  mkdir -p "$work"
  mx_name=$name mx_namespace=$namespace
  # Commands run from the journey's project; only the state is ours.
  local saved_state=${XDG_STATE_HOME:-}
  export XDG_STATE_HOME=$work/state
  # The helper logs each command's byte counts (a lost tail then says on which side).
  export TRAMPOLINE_MUX_LOG_COMMANDS=1

  log "mux: setup (an instance of its own: $name)"
  if ! tramp setup "${args[@]}" "${pod_options[@]}" --idle-timeout 0 --quiet >/dev/null 2>"$work/setup.err"; then
    fail "mux: setup ($(tail -n 3 "$work/setup.err" | tr '\n' ' '))"
    XDG_STATE_HOME=$saved_state
    return 0
  fi
  local dir
  dir=$(ls -d "$XDG_STATE_HOME"/trampoline/*/"$namespace/$name")
  mx_log=$dir/mux.log

  mux_basics "$work" "$dir" "${args[@]}"
  mux_interrupt "$work" "${args[@]}"
  mux_stale "$work" "$dir" "${args[@]}"
  mux_kubeconfig "$work" "${args[@]}"
  mux_pod "$work" "$dir" "${args[@]}"
  mux_off "$work" "$dir" "${args[@]}"

  local pid
  pid=$(mux_pid)
  tramp clean "${args[@]}" --quiet >/dev/null 2>&1 || fail "mux: clean $name"
  check "mux: clean (the state dir goes) ends the helper" mux_wait_gone "$pid"
  check "mux: ... and its socket is gone" mux_socket_gone
  XDG_STATE_HOME=$saved_state
  unset TRAMPOLINE_MUX_LOG_COMMANDS
}

# For test.sh's EXIT trap.
mux_cleanup() {
  [ -n "${mx_name:-}" ] || return 0
  tramp clean --name "$mx_name" -n "$mx_namespace" --quiet >/dev/null 2>&1 || true
}

# The pid of the helper that last started serving this instance's socket (its log line
# `[mux PID] serving ... on SOCKET`; helpers of another kubeconfig log other sockets).
mux_pid() {
  local line
  line=$(grep " serving .* on ${mx_socket}\$" "$mx_log" 2>/dev/null | tail -n 1) || return 0
  line=${line#*\[mux }
  echo "${line%%\]*}"
}

# The socket the first helper logged: in the state dir, or (a long path) in the runtime dir.
mux_first_socket() {
  local line
  line=$(grep ' serving ' "$mx_log" | head -n 1) || return 0
  echo "${line##* on }"
}

# Poll (deadline 30 s) until process $1 is gone.
mux_wait_gone() {
  local pid=$1 deadline=$((SECONDS + 30))
  [ -n "$pid" ] || return 1
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

mux_socket_gone() { test ! -e "$mx_socket"; }

# slow_whole_or_said BYTES CODE ERRFILE: all 20 MB with exit 0, or exit 3 and the cut named.
slow_whole_or_said() {
  if [ "$1" = 20000000 ]; then
    [ "$2" = 0 ]
  else
    [ "$2" = 3 ] && grep -q "cut the command's .* short" "$3"
  fi
}

mux_basics() {
  local work=$1 dir=$2
  shift 2
  log "mux: exit codes, stdout/stderr, stdin, same as the direct path"
  check "mux: shell -- true" tramp shell "$@" -- true
  mx_socket=$(mux_first_socket)
  check "mux: the first command started a helper listening on $mx_socket" test -S "$mx_socket"
  check "mux: the socket is 0600 and its directory 0700" test "$(stat -c %a "$mx_socket") $(stat -c %a "$(dirname "$mx_socket")")" = "600 700"
  local pid
  pid=$(mux_pid)
  check "mux: the helper runs (pid $pid)" kill -0 "$pid"

  local code via direct
  for mode in mux no-mux; do
    local flag=()
    [ $mode = no-mux ] && flag=(--no-mux)
    code=0
    tramp shell "$@" "${flag[@]}" -- sh -c 'echo out; echo err >&2; exit 7' >"$work/$mode.out" 2>"$work/$mode.err" || code=$?
    check "mux ($mode): the exit code is the command's (7)" test "$code" = 7
    check "mux ($mode): stdout holds only stdout" test "$(cat "$work/$mode.out")" = out
    check "mux ($mode): stderr holds only stderr" test "$(cat "$work/$mode.err")" = err
    check "mux ($mode): stdin lines reach the command" test "$(printf 'a\nb\nc\n' | tramp shell "$@" "${flag[@]}" -- wc -l)" = 3
    check "mux ($mode): a script on stdin, no command" test "$(echo 'echo from-stdin; exit 0' | tramp shell "$@" "${flag[@]}")" = from-stdin
    code=0
    tramp shell "$@" "${flag[@]}" -- no-such-command-xyz >/dev/null 2>"$work/$mode.nf" || code=$?
    check "mux ($mode): a missing command is 127" test "$code" = 127
    code=$( (tramp shell "$@" "${flag[@]}" -- yes 2>"$work/$mode.pipe"; echo $? >"$work/$mode.pipecode") | head -n 1 >/dev/null; cat "$work/$mode.pipecode")
    check "mux ($mode): a reader that goes away ends the command like SIGPIPE (141, got $code), quietly" test "$code" = 141 -a ! -s "$work/$mode.pipe"
  done
  head -c 1048576 /dev/urandom >"$work/blob"
  via=$(tramp shell "$@" -- cat <"$work/blob" | sha256sum)
  direct=$(sha256sum <"$work/blob")
  check "mux: 1 MiB of binary stdin comes back byte for byte" test "$via" = "$direct"
  # A reader slower than the pod (its sleep is the slowness, not a wait for a state). Under
  # load the cluster cuts such output short and still says exit 0 (kubernetes#124571, with
  # kubectl exec -i too); shell's end tags (scripts/mux/end-marker.ts) keep the exec open
  # until both tags are in, so with stdin /dev/null or still open nothing can be lost. With a
  # stdin that ended first the exec may end early: then all of it, or an error, never less
  # in silence.
  local code_file stdin_pid
  for mode in mux no-mux; do
    local flag=()
    [ $mode = no-mux ] && flag=(--no-mux)
    code_file=$work/slow-$mode.code
    via=$( { tramp shell "$@" "${flag[@]}" -- head -c 20000000 /dev/zero </dev/null 2>"$work/slow-$mode.err"; echo $? >"$code_file"; } | { sleep 1; wc -c; })
    check "$mode: a slow reader gets all 20 MB of output, stdin /dev/null ($via bytes, exit $(cat "$code_file"), stderr: $(tail -c 300 "$work/slow-$mode.err"))" \
      test "$via" = 20000000 -a "$(cat "$code_file")" = 0
    exec {stdin_fd}< <(sleep 600)
    stdin_pid=$!
    via=$( { tramp shell "$@" "${flag[@]}" -- head -c 20000000 /dev/zero <&"$stdin_fd" 2>"$work/slow-$mode.err"; echo $? >"$code_file"; } | { sleep 1; wc -c; })
    exec {stdin_fd}<&-
    kill "$stdin_pid" 2>/dev/null || true
    check "$mode: ... stdin still open at the end ($via bytes, exit $(cat "$code_file"), stderr: $(tail -c 300 "$work/slow-$mode.err"))" \
      test "$via" = 20000000 -a "$(cat "$code_file")" = 0
    via=$( { printf x | tramp shell "$@" "${flag[@]}" -- head -c 20000000 /dev/zero 2>"$work/slow-$mode.err"; echo $? >"$code_file"; } | { sleep 1; wc -c; })
    check "$mode: ... stdin ended first: all of it, or exit 3 saying it was cut short ($via bytes, exit $(cat "$code_file"), stderr: $(tail -c 300 "$work/slow-$mode.err"))" \
      slow_whole_or_said "$via" "$(cat "$code_file")" "$work/slow-$mode.err"
  done
  # shellcheck disable=SC2016 # $HOME must reach the pod unexpanded
  check "mux: arguments pass as they are" test "$(tramp shell "$@" -- printf '[%s]' 'a b' '' "it's" '$HOME')" = "[a b][][it's][\$HOME]"
  check "mux: the same helper served every command" test "$(mux_pid)" = "$pid"
  check "mux: one helper started" test "$(grep -c ' serving ' "$mx_log")" = 1
}

mux_interrupt() {
  local work=$1
  shift
  log "mux: Ctrl-C"
  local mode
  for mode in mux no-mux; do
    local flag=()
    [ $mode = no-mux ] && flag=(--no-mux)
    rm -f "$work/int.out"
    # node itself in the background (not the tramp function's subshell, which ignores SIGINT).
    "$node_bin" "$root/bin/trampoline.js" shell "$@" "${flag[@]}" -- sh -c 'echo started; exec sleep 120' >"$work/int.out" 2>/dev/null &
    local client=$! deadline=$((SECONDS + 60))
    until grep -q started "$work/int.out" 2>/dev/null; do
      ((SECONDS < deadline)) || break
      sleep 0.2
    done
    kill -INT "$client" 2>/dev/null || true
    local code=0
    wait "$client" || code=$?
    check "mux ($mode): Ctrl-C ends the command's process (status $code, 130 expected)" test "$code" = 130
  done
  check "mux: the helper serves on after a Ctrl-C" test "$(tramp shell "$@" -- echo still)" = still
}

mux_stale() {
  local work=$1 dir=$2
  shift 2
  log "mux: a stale socket"
  local pid
  pid=$(mux_pid)
  kill -KILL "$pid" 2>/dev/null || true
  mux_wait_gone "$pid" || true
  check "mux: a killed helper leaves its socket behind" test -S "$mx_socket"
  check "mux: a command over a stale socket works" test "$(tramp shell "$@" -- echo fresh)" = fresh
  check "mux: ... through a new helper" test "$(mux_pid)" != "$pid"
  check "mux: ... which replaced the stale socket" grep -q 'replacing a stale socket' "$mx_log"

  # The helper killed under a command whose stdin stays open: the command ends with the
  # error at once (it used to wait for its stdin to close; 124 = still waiting at the deadline).
  local code=0 holder cmd
  rm -f "$work/lost.fifo" && mkfifo "$work/lost.fifo"
  sleep 600 >"$work/lost.fifo" &
  holder=$!
  timeout 100 "$node_bin" "$root/bin/trampoline.js" shell "$@" -- sh -c 'echo started; exec sleep 120' <"$work/lost.fifo" >"$work/lost.out" 2>"$work/lost.err" &
  cmd=$!
  poll 120 grep -qx started "$work/lost.out" && kill -KILL "$(mux_pid)" 2>/dev/null
  wait "$cmd" || code=$?
  kill "$holder" 2>/dev/null || true
  check "mux: a helper lost mid-command ends the command at once, stdin still open (exit $code)" \
    bash -c '[ "$1" = 3 ] && grep -q "lost the local mux helper during the command" "$2"' _ "$code" "$work/lost.err"
}

mux_kubeconfig() {
  local work=$1
  shift
  log "mux: a changed kubeconfig never reaches the old helper"
  # Same file content and context name, another server: an unreachable one.
  "$node_bin" -e '
    const fs = require("fs"); const { parse, stringify } = require(process.argv[3])
    const kc = parse(fs.readFileSync(process.argv[1], "utf8"))
    for (const c of kc.clusters) c.cluster.server = "https://127.0.0.1:9"
    fs.writeFileSync(process.argv[2], stringify(kc))' "${KUBECONFIG%%:*}" "$work/moved.kubeconfig" "$root/node_modules/yaml/dist/index.js"
  local code=0
  KUBECONFIG=$work/moved.kubeconfig tramp shell "$@" -- echo wrong >"$work/moved.out" 2>"$work/moved.err" || code=$?
  check "mux: another server is not answered by the old helper (exit $code, 3 expected)" test "$code" = 3
  check "mux: ... and nothing ran" test ! -s "$work/moved.out"
  check "mux: ... it says the cluster cannot be reached" grep -q 'cannot reach the cluster' "$work/moved.err"
  check "mux: the original kubeconfig still works" test "$(tramp shell "$@" -- echo ok)" = ok
  # The other kubeconfig's helper (another socket) is not needed any more.
  local other
  for other in $(grep ' serving ' "$mx_log" | grep -v " on ${mx_socket}\$" | cut -d' ' -f3 | tr -d ']'); do
    kill -TERM "$other" 2>/dev/null || true
  done
}

mux_pod() {
  local work=$1 dir=$2
  shift 2
  log "mux: the pod deleted, then recreated"
  tramp shell "$@" -- touch /tmp/mux-old-pod || fail "mux: touch in the pod"
  local pid
  pid=$(mux_pid)
  tramp down "$@" --quiet >/dev/null 2>&1 || fail "mux: down"
  local code=0 direct=0
  tramp shell "$@" -- true 2>"$work/nopod.err" || code=$?
  tramp shell --no-mux "$@" -- true 2>"$work/nopod-direct.err" || direct=$?
  check "mux: no pod: exit $code, as without the helper ($direct)" test "$code" = "$direct"
  check "mux: no pod: the same message as without the helper" diff "$work/nopod.err" "$work/nopod-direct.err"
  check "mux: the helper ends when the instance has no pod" mux_wait_gone "$pid"
  check "mux: ... and removes its socket" mux_socket_gone
  tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --quiet >/dev/null 2>"$work/setup2.err" || fail "mux: setup again ($(tail -n 2 "$work/setup2.err" | tr '\n' ' '))"
  code=0
  tramp shell "$@" -- test -e /tmp/mux-old-pod || code=$?
  check "mux: after the pod was recreated commands run in the new pod" test "$code" = 1
  # A helper that outlives a pod: recreate it again while the helper (with a spare) runs.
  pid=$(mux_pid)
  tramp shell "$@" -- touch /tmp/mux-old-pod || fail "mux: touch in the new pod"
  tramp down "$@" --quiet >/dev/null 2>&1 || fail "mux: down"
  tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --quiet >/dev/null 2>"$work/setup3.err" || fail "mux: setup again ($(tail -n 2 "$work/setup3.err" | tr '\n' ' '))"
  code=0
  tramp shell "$@" -- test -e /tmp/mux-old-pod || code=$?
  check "mux: a spare of the old pod is never used for the new one" test "$code" = 1
}

mux_off() {
  local work=$1 dir=$2
  shift 2
  log "mux: turned off, and idle"
  local pid
  pid=$(mux_pid)
  kill -TERM "$pid" 2>/dev/null || true
  check "mux: SIGTERM ends the helper" mux_wait_gone "$pid"
  check "mux: ... and it removes its socket" mux_socket_gone
  TRAMPOLINE_MUX=0 tramp shell "$@" -- true || fail "mux: TRAMPOLINE_MUX=0 shell -- true"
  tramp shell --no-mux "$@" -- true || fail "mux: shell --no-mux -- true"
  check "mux: TRAMPOLINE_MUX=0 and --no-mux start no helper" mux_socket_gone
  TRAMPOLINE_MUX_IDLE=2 tramp shell "$@" -- true || fail "mux: shell -- true with a short idle time"
  pid=$(mux_pid)
  check "mux: a helper idle for TRAMPOLINE_MUX_IDLE seconds ends" mux_wait_gone "$pid"
  check "mux: ... and removes its socket" mux_socket_gone
  # A command that never reads its stdin while we keep sending (the helper stops reading
  # us), its client then killed: the helper notices, aborts it, and still idles out.
  yes | TRAMPOLINE_MUX_IDLE=2 timeout 5 "$node_bin" "$root/bin/trampoline.js" shell "$@" -- sleep 120 >/dev/null 2>&1 || true
  pid=$(mux_pid)
  check "mux: a client killed while its stdin backs up does not hold the helper" mux_wait_gone "$pid"
  check "mux: the next command starts a helper again" tramp shell "$@" -- true
}
