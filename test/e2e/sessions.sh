#!/usr/bin/env bash
# shellcheck shell=bash
# shellcheck disable=SC2154 # root, node_bin, cache_url, cache_dir come from test.sh and cache.sh
# Detachable agent sessions against the real pod, sourced by test.sh (tramp, check, fail,
# log, json_field, journey_arg):
#
#   sessions_journey WORK --name <instance> -n <namespace>
#
# `trampoline claude` on a terminal (script(1) gives it one) runs a stand-in claude in
# ~/.local/bin (an id, then a counter per line typed) inside tmux in the pod. The local
# client is killed with SIGKILL mid-session; the session must stay listed, keep the pod
# busy and count as an agent in status; `claude --attach` must show the same claude (its
# id and counter on the redrawn screen); typing `quit` ends claude (status 7), the
# session, its tmux server, and the activity. Every wait polls for the state it asserts.
#
# tmux: the test image has none, as the default image. On the local cluster this host's
# tmux is made self-contained (container/tests/tmux-bundle.sh), added to the host's store
# and signed into the local binary cache, and `claude --tmux <store path>` makes the pod
# substitute it through its nix-daemon: the provisioning path of a real cluster, with a
# store path instead of nixpkgs#tmux. Elsewhere the pod realises the default itself.

# sessions_tty LOG FIFO ARGS...: `trampoline ARGS` on a terminal of its own, typed into
# through FIFO (held open read-write as sessions_tty_fd: no end of input, and writes never
# block), its screen in LOG; extra environment from sessions_tty_env. Sets sessions_tty_pid
# (script's pid; the CLI is its only child). A person at a terminal: CI's quiet mode is off.
sessions_tty_env=()
sessions_tty() {
  local log=$1 fifo=$2 cmd
  shift 2
  cmd=$(printf '%q ' "$node_bin" "$root/bin/trampoline.js" "$@")
  exec {sessions_tty_fd}<>"$fifo"
  env -u CI ${sessions_tty_env[@]+"${sessions_tty_env[@]}"} TERM=xterm-256color script -qfec "exec $cmd" "$log" <&"$sessions_tty_fd" >/dev/null 2>&1 &
  sessions_tty_pid=$!
}

# sessions_exited PID: a child of ours that ended (a zombie until waited for).
sessions_exited() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) }
  [ "${stat%% *}" = Z ]
}
sessions_screen_has() { grep -aq -- "$2" "$1"; }
sessions_list() { tramp sessions "$@" --json; }
sessions_count_is() { local n=$1; shift; test "$(sessions_list "$@" | json_field length)" = "$n"; }
sessions_attached_is() { local a=$1; shift; test "$(sessions_list "$@" | json_field 0.attached)" = "$a"; }
sessions_agents_are() { local n=$1; shift; test "$(tramp status "$@" --json | json_field 0.agentSessions)" = "$n"; }
sessions_activity_has_tmux() { tramp status "$@" --json | json_field 0.activity | grep -q tmux; }
sessions_no_tmux_activity() { ! sessions_activity_has_tmux "$@"; }

sessions_journey() {
  local work=$1
  shift
  local name namespace tmux_opt=() store='' fake id listed out code t0 client
  name=$(journey_arg --name "$@")
  namespace=$(journey_arg -n "$@")
  namespace=${namespace:-default}
  mkdir -p "$work/sessions"
  local dir=$work/sessions

  # The stand-in claude, where Claude Code's own installer puts it (it wins over the image's).
  cat >"$dir/claude" <<'EOF'
#!/usr/bin/env bash
echo "FAKE-ID=$$x$RANDOM key=${ANTHROPIC_API_KEY:+set}"
n=0
while read -r line; do n=$((n + 1)); echo "COUNT=$n got=$line"; [ "$line" != quit ] || exit 7; done
exit 3
EOF
  tramp shell "$@" -- sh -c 'mkdir -p ~/.local/bin && cat > ~/.local/bin/claude && chmod 0755 ~/.local/bin/claude' <"$dir/claude" ||
    fail "installing the stand-in claude in the pod"

  # A key only when the instance has none yet (the agent journey may have stored one).
  if ! kubectl get secret "trampoline-$name-agent" -n "$namespace" >/dev/null 2>&1; then
    sessions_tty_env=(ANTHROPIC_API_KEY="sk-ant-test-sessions-$$-$RANDOM")
  fi

  if [[ -n ${cache_url:-} ]]; then
    if "$root/container/tests/tmux-bundle.sh" "$dir/tmux-3.3a-bundle" &&
      store=$(nix-store --add "$dir/tmux-3.3a-bundle") &&
      nix --extra-experimental-features nix-command copy --to "file://$cache_dir/good?secret-key=$work/good.sk" "$store" >&2; then
      tmux_opt=(--tmux "$store")
    else
      fail "publishing the tmux stand-in to the local binary cache"
    fi
    check "the pod has no such tmux before ($store)" tramp shell "$@" -- sh -c '! nix-store --check-validity "$1" 2>/dev/null' _ "$store"
  else
    echo "SKIP tmux from the local binary cache (not the local cluster): the pod realises nixpkgs#tmux itself"
  fi

  # 1. Start: claude in tmux, on a terminal.
  mkfifo "$dir/in1" "$dir/in2"
  t0=$SECONDS
  sessions_tty "$dir/screen1" "$dir/in1" claude "$@" ${tmux_opt[@]+"${tmux_opt[@]}"}
  sessions_tty_env=()
  local tty1=$sessions_tty_pid in1=$sessions_tty_fd
  code=0
  poll 300 sessions_screen_has "$dir/screen1" 'FAKE-ID=' || code=$?
  check "claude on a terminal starts the stand-in in a session ($((SECONDS - t0))s to its first screen, key sync and tmux included)" test "$code" = 0
  fake=$(grep -ao 'FAKE-ID=[0-9x]*' "$dir/screen1" | head -n1)
  check "the session's claude has the API key in its environment" grep -aq 'key=set' "$dir/screen1"
  if [[ -n $store ]]; then
    check "the pod substituted tmux from the signed local binary cache" grep -q "GET /good/${store:11:32}.narinfo" "$work/cache-server.log"
    check "and rooted it in gcroots/trampoline/agent-tmux" \
      test "$(tramp shell "$@" -- readlink /nix/var/nix/gcroots/trampoline/agent-tmux)" = "$store"
  fi
  printf 'one\r' >&"$in1"
  check "typing reaches it (COUNT=1)" poll 120 sessions_screen_has "$dir/screen1" 'COUNT=1 got=one'
  listed=$(sessions_list "$@") || listed='[]'
  id=$(json_field 0.id <<<"$listed")
  check "trampoline sessions lists it, attached ($listed)" \
    bash -c '[[ $1 =~ ^[0-9a-f]{8}$ ]] && [ "$2" = true ] && [[ $3 == claude* ]]' _ "$id" "$(json_field 0.attached <<<"$listed")" "$(json_field 0.command <<<"$listed")"

  # 2. The laptop's client dies mid-session.
  client=$(tr -d ' ' <"/proc/$tty1/task/$tty1/children" 2>/dev/null) || client=''

  check "the local client is running (pid $client)" test -n "$client"
  [[ -n $client ]] && kill -KILL "$client"
  wait "$tty1" 2>/dev/null || true
  exec {in1}>&-
  check "after SIGKILL of the client the session is still listed" poll 120 sessions_count_is 1 "$@"
  # Kubernetes leaves an exec's process running when its connection drops (the runtime
  # keeps its terminal open), so the pod-side client may still count as attached here.
  log "after the client's SIGKILL: $(sessions_list "$@" || true)"
  check "status counts it as an agent session" poll 60 sessions_agents_are 1 "$@"
  check "and as activity (its tmux server)" poll 60 sessions_activity_has_tmux "$@"
  out=$(tramp status "$@" --json | json_field 0.idleSeconds)
  check "so the pod is not idle (idleSeconds $out)" test "$out" = 0

  # 3. Back to it: the same claude, its screen as it was.
  t0=$SECONDS
  sessions_tty "$dir/screen2" "$dir/in2" claude --attach "$@"
  local tty2=$sessions_tty_pid in2=$sessions_tty_fd
  check "claude --attach shows the same claude ($fake)" poll 60 sessions_screen_has "$dir/screen2" "$fake"
  log "reattached after $((SECONDS - t0))s"
  check "with what it printed before (COUNT=1)" grep -aq 'COUNT=1 got=one' "$dir/screen2"
  printf 'two\r' >&"$in2"
  check "typing reaches the same claude (COUNT=2)" poll 120 sessions_screen_has "$dir/screen2" 'COUNT=2 got=two'
  check "sessions shows it attached again" poll 120 sessions_attached_is true "$@"
  check "by this client alone (a client left by the lost connection was taken over)" \
    test "$(sessions_list "$@" | json_field 0.clients)" = 1

  # 4. claude ends: the session, its tmux server and the activity go with it.
  printf 'quit\r' >&"$in2"
  code=0
  poll 120 sessions_exited "$tty2" || kill -KILL "$tty2" 2>/dev/null
  wait "$tty2" || code=$?
  exec {in2}>&-
  check "claude's exit status is the client's (7, got $code)" test "$code" = 7
  check "no sessions are left" poll 120 sessions_count_is 0 "$@"
  check "status counts no agent" poll 60 sessions_agents_are 0 "$@"
  check "and no tmux activity" poll 60 sessions_no_tmux_activity "$@"
  if [[ -n $store ]]; then
    check "the first session showed the pod realising tmux" grep -aq 'providing tmux for detachable sessions' "$dir/screen1"
  fi

  # 5. A session when everything is in place (tmux rooted, key in the pod): how fast.
  mkfifo "$dir/in3"
  t0=$SECONDS
  sessions_tty "$dir/screen3" "$dir/in3" claude "$@" --new
  local tty3=$sessions_tty_pid in3=$sessions_tty_fd
  code=0
  poll 60 sessions_screen_has "$dir/screen3" 'FAKE-ID=' || code=$?
  check "a later session starts in $((SECONDS - t0))s, tmux not realised again" \
    bash -c '[ "$1" = 0 ] && ! grep -aq "providing tmux" "$2"' _ "$code" "$dir/screen3"
  printf 'quit\r' >&"$in3"
  poll 120 sessions_exited "$tty3" || kill -KILL "$tty3" 2>/dev/null
  wait "$tty3" 2>/dev/null || true
  exec {in3}>&-
  check "and ends with its claude" poll 120 sessions_count_is 0 "$@"

  code=0
  tramp claude --attach "$@" >/dev/null 2>"$dir/attach-none.err" || code=$?
  check "claude --attach with no session fails (exit $code) naming trampoline sessions" \
    bash -c '[ "$1" = 5 ] && grep -q "trampoline sessions" "$2"' _ "$code" "$dir/attach-none.err"

  tramp shell "$@" -- rm -f .local/bin/claude >/dev/null 2>&1 || fail "removing the stand-in claude"
}
