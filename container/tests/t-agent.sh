# shellcheck shell=bash
# Agent sessions: container/agent-session.sh as `trampoline claude` runs it (an exec into
# the user container, UID 1000) with a fake `claude` first on PATH that prints its
# arguments, its directory and whether ANTHROPIC_API_KEY is the expected key (never the
# key). The key comes from a Secret volume laid out as the kubelet does it (root-owned,
# 0444, ..data swapped atomically). Sourced by run.sh after t-pod.sh: the containers it
# stopped are started again here.

AGENT_DIR=/etc/trampoline/agent
PROJECTS=/home/trampoline/.claude/projects
KEY_A="sk-ant-test-$RANDOM$RANDOM$RANDOM-a"
KEY_B="sk-ant-test-$RANDOM$RANDOM$RANDOM-b"
sha() { printf '%s' "$1" | sha256sum | cut -c1-64; }
SHA_A=$(sha "$KEY_A") SHA_B=$(sha "$KEY_B")

mkdir -p "$T/fakebin"
cat > "$T/fakebin/claude" <<'EOF'
#!/usr/bin/env bash
# A stand-in for Claude Code: what it was given, never the key itself.
printf 'argv:'; printf ' [%s]' "$@"; echo
echo "cwd: $(pwd -P)"
if [ "$(printf '%s' "${ANTHROPIC_API_KEY-}" | sha256sum | cut -c1-64)" = "$FAKE_EXPECT_KEY_SHA256" ]; then echo "key: expected"; else echo "key: other"; fi
echo "term: ${TERM-unset}"
echo "autoupdater: ${DISABLE_AUTOUPDATER-unset}"
if [ -n "${FAKE_CLAUDE_SLEEP:-}" ]; then sleep "$FAKE_CLAUDE_SLEEP"; fi
# A conversation on a terminal: an id of its own, then a counter per line typed.
if [ -n "${FAKE_CLAUDE_INTERACTIVE:-}" ]; then
  echo "FAKE-ID=$$x$RANDOM"
  n=0
  while read -r line; do n=$((n + 1)); echo "COUNT=$n got=$line"; [ "$line" != quit ] || exit 7; done
  exit 3
fi
# Until the input ends: an ssh session's command ends with its connection.
if [ -n "${FAKE_CLAUDE_STDIN:-}" ]; then cat >/dev/null; fi
exit "${FAKE_CLAUDE_EXIT:-0}"
EOF
chmod 0755 "$T/fakebin" "$T/fakebin/claude"

# put_agent_key KEY: what the kubelet does for a new or changed Secret.
put_agent_key() {
  local ts
  ts=..$(date +%s%N)
  mkdir -m 0755 "$AGENT_DIR/$ts"
  printf '%s' "$1" > "$AGENT_DIR/$ts/ANTHROPIC_API_KEY"
  chmod 0444 "$AGENT_DIR/$ts/ANTHROPIC_API_KEY"
  ln -sfn "$ts" "$AGENT_DIR/..data_tmp"
  mv -T "$AGENT_DIR/..data_tmp" "$AGENT_DIR/..data"
  ln -sfn ..data/ANTHROPIC_API_KEY "$AGENT_DIR/ANTHROPIC_API_KEY"
}
install -d -m 0755 "$AGENT_DIR"

# agent [ENV=VALUE...] -- WRAPPER ARGS: the wrapper as `trampoline claude` execs it.
agent() {
  local vars=()
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  user_exec env PATH="$T/fakebin:$TOOLSET" FAKE_EXPECT_KEY_SHA256="$SHA_A" \
    TRAMPOLINE_AGENT_KEY_WAIT=20 ${vars[@]+"${vars[@]}"} /opt/trampoline/agent-session.sh "$@"
}
# as_user CMD...: files in the home volume belong to UID 1000.
as_user() { user_exec "$@"; }
no_key_in() { ! grep -qF -e "$KEY_A" -e "$KEY_B" "$@"; }
# Claude Code's project directory name for a path, and the path claude sees for the
# workspace: /workspace/src itself (a real directory) or the tree it links to.
project_key() { printf '%s' "${1//[^a-zA-Z0-9]/-}"; }
src_real() { readlink -f /workspace/src; }
src_key() { project_key "$(src_real)"; }

# The pod again, idle timeout long enough not to interfere.
rm -f /run/trampoline/shutdown /run/trampoline/last-push
start_daemon
poll 60 daemon_ready || cat "$T/logs/daemon.log"
start_user 1800
poll 90 sshd_ready || cat "$T/logs/user.log"
put_agent_key "$KEY_A"

t_agent_key() {
  local out
  out=$(agent -- --key-sha256 "${SHA_A:0:16}" -- --version 2>"$T/logs/agent-key.err")
  echo "$out"; cat "$T/logs/agent-key.err"
  grep -qx 'key: expected' <<<"$out"
  grep -qxF 'argv: [--version]' <<<"$out"
  grep -qx "cwd: $(src_real)" <<<"$out"
  grep -qx 'autoupdater: 1' <<<"$out"
  no_key_in <<<"$out" && no_key_in "$T/logs/agent-key.err" || return 1
  [ ! -s "$T/logs/agent-key.err" ]
  # Without an expected fingerprint (a pod-side run) the mounted key serves as well.
  out=$(agent -- -- -p x)
  grep -qx 'key: expected' <<<"$out"
}
check "agent: the key in the mounted Secret reaches claude as ANTHROPIC_API_KEY (root-owned 0444 file, UID 1000)" t_agent_key

t_agent_fresh_then_continue() {
  local out
  as_user rm -rf "$PROJECTS"
  out=$(agent -- --key-sha256 "${SHA_A:0:16}" -- -p 'first question')
  echo "$out"
  grep -qxF 'argv: [-p] [first question]' <<<"$out"
  # A tree behind a link: its project directory now leads to the workspace's.
  [ "$(src_key)" = -workspace-src ] || [ "$(readlink "$PROJECTS/$(src_key)")" = -workspace-src ]
  # What Claude Code writes for a conversation in this directory.
  as_user mkdir -p "$PROJECTS/$(src_key)"
  as_user sh -c "echo '{\"type\":\"user\"}' > '$PROJECTS/$(src_key)/11111111-aaaa.jsonl'"
  [ -f "$PROJECTS/-workspace-src/11111111-aaaa.jsonl" ]
  out=$(agent -- --key-sha256 "${SHA_A:0:16}" -- -p 'next question')
  echo "$out"
  grep -qxF 'argv: [--continue] [-p] [next question]' <<<"$out"
  out=$(agent -- --key-sha256 "${SHA_A:0:16}" --new -- -p 'other topic')
  grep -qxF 'argv: [-p] [other topic]' <<<"$out"
  # Arguments that pick a session themselves get no --continue.
  out=$(agent -- --key-sha256 "${SHA_A:0:16}" -- --resume 1234)
  grep -qxF 'argv: [--resume] [1234]' <<<"$out"
}
check "agent: fresh without a transcript, --continue with one, --new and --resume start no --continue" t_agent_fresh_then_continue

t_agent_after_push() {
  local out tree4 before
  before=$(src_key)
  tree4=$(push_commit 4)
  push "$tree4" < "$T/tree-4.tar"
  # A conversation started by hand in the new tree (e.g. from trampoline shell).
  as_user mkdir -p "$PROJECTS/$(src_key)"
  as_user sh -c "echo '{}' > '$PROJECTS/$(src_key)/22222222-bbbb.jsonl'"
  out=$(agent -- --key-sha256 "${SHA_A:0:16}" -- -p 'after the push')
  echo "$out"
  grep -qx "cwd: $(src_real)" <<<"$out"
  grep -qxF 'argv: [--continue] [-p] [after the push]' <<<"$out"
  [ -f "$PROJECTS/-workspace-src/11111111-aaaa.jsonl" ] && [ -f "$PROJECTS/-workspace-src/22222222-bbbb.jsonl" ] || return 1
  if [ "$(src_key)" != -workspace-src ]; then
    # Trees behind a link: the new one leads to the workspace's, the removed one's link is gone.
    [ "$(readlink "$PROJECTS/$(src_key)")" = -workspace-src ]
    [ ! -e "$PROJECTS/$before" ] && [ ! -L "$PROJECTS/$before" ]
  fi
}
check "agent: the conversation outlives a push (each tree's project directory links to the workspace's)" t_agent_after_push

t_agent_args_and_exit() {
  local out code=0
  out=$(agent FAKE_CLAUDE_EXIT=3 -- --key-sha256 "${SHA_A:0:16}" --term xterm-256color --new -- -p 'a  b' '$HOME' '--x=1' '') || code=$?
  echo "$out"
  [ "$code" = 3 ]
  grep -qxF 'argv: [-p] [a  b] [$HOME] [--x=1] []' <<<"$out"
  grep -qx 'term: xterm-256color' <<<"$out"
}
check "agent: claude's arguments pass through verbatim, its exit code is the session's, --term sets TERM" t_agent_args_and_exit

t_agent_waits_for_key() {
  local out pid
  # The session waits for key B; B is written only once it says it is waiting.
  agent FAKE_EXPECT_KEY_SHA256="$SHA_B" TRAMPOLINE_AGENT_KEY_WAIT=600 -- --key-sha256 "${SHA_B:0:16}" -- -p x >"$T/agent-wait.out" 2>"$T/logs/agent-wait.err" &
  pid=$!
  if ! poll 120 grep -q 'waiting for the API key to reach the pod' "$T/logs/agent-wait.err"; then
    kill "$pid" 2>/dev/null
    return 1
  fi
  put_agent_key "$KEY_B"
  wait "$pid" || return 1
  out=$(cat "$T/agent-wait.out")
  echo "$out"; cat "$T/logs/agent-wait.err"
  grep -qx 'key: expected' <<<"$out"
  no_key_in <<<"$out" && no_key_in "$T/logs/agent-wait.err"
}
check "agent: a key written just now (Secret not yet synced) is waited for, with a message" t_agent_waits_for_key

t_agent_key_never_arrives() {
  local code=0
  agent TRAMPOLINE_AGENT_KEY_WAIT=2 -- --key-sha256 "${SHA_A:0:16}" -- -p x >"$T/logs/agent-timeout.out" 2>&1 || code=$?
  cat "$T/logs/agent-timeout.out"
  [ "$code" = 69 ]
  grep -q 'did not reach /etc/trampoline/agent/ANTHROPIC_API_KEY within 2s' "$T/logs/agent-timeout.out"
  ! grep -q '^argv:' "$T/logs/agent-timeout.out" || return 1
  no_key_in "$T/logs/agent-timeout.out"
}
check "agent: a key that never arrives ends the session after the bounded wait (exit 69), key unprinted" t_agent_key_never_arrives

t_agent_preconditions() {
  local code=0 out
  agent TRAMPOLINE_AGENT_SECRET_DIR=/etc/trampoline/none -- -- -p x >"$T/logs/agent-nomount" 2>&1 || code=$?
  cat "$T/logs/agent-nomount"
  [ "$code" = 78 ] && grep -q 'older trampoline' "$T/logs/agent-nomount" || return 1
  code=0
  user_exec env PATH="$TOOLSET" /opt/trampoline/agent-session.sh -- -p x >"$T/logs/agent-noclaude" 2>&1 || code=$?
  cat "$T/logs/agent-noclaude"
  [ "$code" = 127 ] && grep -q 'claude is not installed' "$T/logs/agent-noclaude" || return 1
  out=$(agent FAKE_EXPECT_KEY_SHA256="$SHA_B" TRAMPOLINE_WORKSPACE_SRC=/workspace/none -- -- -p x 2>"$T/logs/agent-nopush")
  echo "$out"; cat "$T/logs/agent-nopush"
  grep -qx 'cwd: /home/trampoline' <<<"$out" && grep -q 'nothing pushed yet' "$T/logs/agent-nopush" || return 1
  code=0
  agent -- --key-sha256 'not hex' -- x >/dev/null 2>&1 || code=$?
  [ "$code" = 2 ]
}
check "agent: no key volume (78), no claude (127), nothing pushed (home, with a note), bad usage (2)" t_agent_preconditions

# --- the idle monitor -------------------------------------------------------------------
monitor_agents() { monitor_check 1800 | json_field agents; }
agents_are() { [ "$(monitor_agents)" = "$1" ]; }
live_agents_are() { [ "$(json_field agents </run/trampoline/monitor.json)" = "$1" ]; }
t_agent_is_activity() {
  local session ssh_session d leaked
  [ "$(monitor_agents)" = 0 ]
  agent FAKE_EXPECT_KEY_SHA256="$SHA_B" FAKE_CLAUDE_SLEEP=600 -- --key-sha256 "${SHA_B:0:16}" --new -- -p 'long task' >"$T/logs/agent-long" 2>&1 &
  session=$!
  # An agent started by hand over ssh counts as well. Both run until killed below, however
  # long the machine takes to see them.
  (sleep 600 | pod_ssh "$T/keys/client" "PATH=$T/fakebin:\$PATH FAKE_CLAUDE_STDIN=1 FAKE_EXPECT_KEY_SHA256=x claude" >/dev/null 2>&1) &
  ssh_session=$!
  poll 120 agents_are 2 || true
  d=$(monitor_check 1800); echo "$d"
  # The key is in the session's environment, never on any command line in the container.
  leaked=$(nsenter --target "$USER_INIT" --pid --mount -- sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null' | tr '\0' ' ' | grep -cF -e "$KEY_A" -e "$KEY_B" || true)
  poll 120 live_agents_are 2 || true
  local live; live=$(cat /run/trampoline/monitor.json); echo "$live"
  # A second session meanwhile starts its own conversation rather than continue the live one.
  local second
  second=$(agent FAKE_EXPECT_KEY_SHA256="$SHA_B" -- --key-sha256 "${SHA_B:0:16}" -- -p 'meanwhile' 2>"$T/logs/agent-second.err")
  echo "$second"; cat "$T/logs/agent-second.err"
  kill_tree "$session"; kill_tree "$ssh_session"; wait "$session" "$ssh_session" 2>/dev/null || true
  json_is "$d" idle false
  json_is "$d" idleSeconds 0
  json_is "$d" agents 2
  grep -q '^exec .*/fakebin/claude -p long task' <<<"$(active_of "$d")"
  grep -q '^ssh ' <<<"$(active_of "$d")"
  json_is "$live" agents 2
  [ "$leaked" = 0 ] || { echo "the key is on $leaked command line(s)"; return 1; }
  [ -f "$PROJECTS/-workspace-src/11111111-aaaa.jsonl" ]
  grep -qxF 'argv: [-p] [meanwhile]' <<<"$second"
  grep -q 'another agent session is running in this pod' "$T/logs/agent-second.err"
  poll 120 agents_are 0 || { user_exec ps -eo pid,ppid,args; return 1; }
}
check "monitor: an agent session via the wrapper is activity and counted in \"agents\" (an ssh-started one too); a second session does not --continue the live one" t_agent_is_activity

# --- detachable sessions (tmux) -------------------------------------------------------------
# The images have no tmux: the pod realises one into gcroots/trampoline/agent-tmux. Here the
# stand-in is this host's tmux made self-contained (tmux-bundle.sh), added to the store by
# the user; the e2e has the pod substitute it from a signed binary cache instead.
SESSIONS=/run/trampoline/sessions
TMUX_ROOT=/nix/var/nix/gcroots/trampoline/agent-tmux
"$HERE/tmux-bundle.sh" "$T/tmux-3.3a-bundle"

# tty_agent LOG FD ARGS...: agent-session.sh ARGS on a terminal of its own (script(1)), as
# `trampoline claude` on a terminal runs it; its input is fd FD, its screen LOG. Sets TTY_PID.
tty_agent() {
  local log=$1 fd=$2 cmd
  shift 2
  cmd=$(printf '%q ' nsenter --target "$USER_INIT" --pid --mount -- "${AS_USER[@]}" env -i "${USER_ENV[@]}" \
    PATH="$T/fakebin:$TOOLSET" FAKE_EXPECT_KEY_SHA256="$SHA_B" FAKE_CLAUDE_INTERACTIVE=1 TRAMPOLINE_AGENT_KEY_WAIT=20 \
    /opt/trampoline/agent-session.sh "$@")
  TERM=xterm-256color script -qfec "exec $cmd" "$log" <&"$fd" >/dev/null 2>&1 &
  TTY_PID=$!
}
sessions_json() { user_script /opt/trampoline/agent-session.sh --list; }
session_count_is() { [ "$(sessions_json | json_field length)" = "$1" ]; }
first_attached_is() { [ "$(sessions_json | json_field 0.attached)" = "$1" ]; }
screen_has() { grep -aq -- "$2" "$1"; }
# tmux processes in the user container (host pids).
tmux_procs() { local p; for p in $(descendants "$USER_INIT"); do tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'agent-tmux\|tmux-3.3a-bundle' && echo "$p"; done; true; }
no_tmux_left() { [ -z "$(tmux_procs)" ]; }

t_sessions_provide_tmux() {
  local out code=0 store
  # Nothing to realise offline: a clear failure, nothing linked.
  out=$(user_script /opt/trampoline/agent-session.sh --provide-tmux 'nixpkgs#tmux' 2>&1) || code=$?
  echo "$out"
  [ "$code" = 72 ] && grep -q 'could not realise nixpkgs#tmux' <<<"$out" || return 1
  [ ! -e "$TMUX_ROOT" ]
  code=0
  user_script /opt/trampoline/agent-session.sh --attach >/dev/null 2>&1 || code=$?
  [ "$code" = 66 ]
  # No tmux yet: a detachable session says so before waiting for any key.
  code=0
  agent -- --key-sha256 "${SHA_A:0:16}" --detachable -- x >"$T/logs/no-tmux" 2>&1 || code=$?
  cat "$T/logs/no-tmux"
  [ "$code" = 72 ] && grep -q 'no tmux in this pod' "$T/logs/no-tmux" || return 1
  # A store path: realised through the daemon, rooted, its bin/tmux printed.
  store=$(as_user nix-store --add "$T/tmux-3.3a-bundle")
  out=$(user_script /opt/trampoline/agent-session.sh --provide-tmux "$store" --replace)
  [ "$out" = "$store/bin/tmux" ]
  [ "$(readlink "$TMUX_ROOT")" = "$store" ]
  # The pod has one now: no realising again, whatever the default names.
  out=$(user_script /opt/trampoline/agent-session.sh --provide-tmux 'nixpkgs#tmux' 2>&1)
  [ "$out" = "$store/bin/tmux" ]
  # Maintenance keeps it (a GC root).
  ! as_user nix-store --gc --print-dead 2>/dev/null | grep -qxF "$store" || return 1
  user_exec env PATH="$TOOLSET" "$store/bin/tmux" -V | grep -q '^tmux '
}
check "sessions: --provide-tmux roots a store path (here one the user added; the e2e substitutes it) as gcroots/trampoline/agent-tmux, once; offline nixpkgs#tmux fails clearly (72)" t_sessions_provide_tmux

t_sessions_detach_reattach() {
  local id fake d attach_rc=0 live
  mkfifo "$T/tty-in1" "$T/tty-in2"
  exec {in1}<>"$T/tty-in1"
  tty_agent "$T/logs/tty1" "$in1" --key-sha256 "${SHA_B:0:16}" --detachable --new -- --model test
  poll 120 screen_has "$T/logs/tty1" 'FAKE-ID=' || { cat -v "$T/logs/tty1"; return 1; }
  fake=$(grep -ao 'FAKE-ID=[0-9x]*' "$T/logs/tty1" | head -n1)
  grep -aq 'key: expected' "$T/logs/tty1"
  grep -aqF 'argv: [--model] [test]' "$T/logs/tty1"
  printf 'one\r' >&"$in1"
  poll 120 screen_has "$T/logs/tty1" 'COUNT=1 got=one'
  d=$(sessions_json); echo "$d"
  json_is "$d" length 1
  json_is "$d" 0.attached 1
  json_is "$d" 0.command "claude --model test"
  json_is "$d" 0.id.length 8
  id=$(json_field 0.id <<<"$d")
  # The key is in the session's environment only, on no command line.
  ! nsenter --target "$USER_INIT" --pid --mount -- sh -c 'cat /proc/[0-9]*/cmdline 2>/dev/null' | tr '\0' ' ' | grep -qF -e "$KEY_A" -e "$KEY_B" || return 1
  # The connection drops: the terminal goes away under the client.
  kill -KILL "$TTY_PID"; wait "$TTY_PID" 2>/dev/null || true
  poll 120 first_attached_is 0 || { sessions_json; return 1; }
  # Still running, and activity: its server (re-parented to PID 1) with claude below it.
  poll 120 agents_are 1
  d=$(monitor_check 1800); echo "$d"
  json_is "$d" idle false
  json_is "$d" agents 1
  grep -q '^process .*tmux' <<<"$(active_of "$d")"
  not grep -q '^exec ' <<<"$(active_of "$d")"
  # Back to it (the newest, no id given): the same claude, its screen as it was.
  exec {in2}<>"$T/tty-in2"
  tty_agent "$T/logs/tty2" "$in2" --attach --term xterm-256color
  poll 120 screen_has "$T/logs/tty2" "$fake" || { cat -v "$T/logs/tty2"; return 1; }
  grep -aq 'COUNT=1 got=one' "$T/logs/tty2"
  poll 120 first_attached_is 1
  printf 'two\r' >&"$in2"
  poll 120 screen_has "$T/logs/tty2" 'COUNT=2 got=two'
  # claude ends: so do the session, its server and the client, with claude's status.
  printf 'quit\r' >&"$in2"
  wait "$TTY_PID" || attach_rc=$?
  exec {in1}>&- {in2}>&-
  [ "$attach_rc" = 7 ]
  poll 120 no_tmux_left || { tmux_procs; return 1; }
  [ "$(sessions_json)" = '[]' ]
  live=$(find "$SESSIONS" -mindepth 1 | wc -l); [ "$live" = 0 ]
  poll 120 agents_are 0
  d=$(monitor_check 1800); echo "$d"
  json_is "$d" active '[]'
}
check "sessions: claude in tmux on a terminal; the client killed, it runs on (listed, activity, an agent); --attach shows the same claude; its exit ends all (status 7)" t_sessions_detach_reattach

t_sessions_end_detached() {
  local id code=0 tmux_bin
  mkfifo "$T/tty-in3"
  exec {in3}<>"$T/tty-in3"
  tty_agent "$T/logs/tty3" "$in3" --key-sha256 "${SHA_B:0:16}" --detachable --new
  poll 120 screen_has "$T/logs/tty3" 'FAKE-ID=' || { cat -v "$T/logs/tty3"; return 1; }
  kill -KILL "$TTY_PID"; wait "$TTY_PID" 2>/dev/null || true
  exec {in3}>&-
  poll 120 first_attached_is 0
  id=$(sessions_json | json_field 0.id)
  # An unknown id is refused; the known one is there.
  user_script /opt/trampoline/agent-session.sh --attach 0000abcd >/dev/null 2>&1 || code=$?
  [ "$code" = 66 ]
  # claude ends with nobody attached: nothing stays behind to keep the pod busy.
  tmux_bin=$(readlink "$TMUX_ROOT")/bin/tmux
  user_exec env PATH="$TOOLSET" "$tmux_bin" -S "$SESSIONS/$id.sock" send-keys -t "=$id:" quit Enter
  poll 120 no_tmux_left || { tmux_procs; return 1; }
  [ "$(sessions_json)" = '[]' ]
  poll 120 agents_are 0
  code=0
  user_script /opt/trampoline/agent-session.sh --attach >"$T/logs/attach-none" 2>&1 || code=$?
  cat "$T/logs/attach-none"
  [ "$code" = 66 ] && grep -q 'trampoline sessions' "$T/logs/attach-none"
}
check "sessions: a detached claude that ends takes its tmux server with it; --attach without sessions (66) names trampoline sessions" t_sessions_end_detached
