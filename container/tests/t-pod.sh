# shellcheck shell=bash
# The running pod: nix-daemon and user containers from their entrypoints, builds, sshd,
# ssh-ng copies, pushes, maintenance, and the idle monitor down to an idle shutdown.
# Sourced by run.sh after t-store-init.sh (so /nix is the initialised volume).

IMG_P2=$(cat "$T/img-p2" 2>/dev/null || echo /nonexistent)
ROOTS=/nix/var/nix/gcroots/trampoline

# --- nix-daemon container -------------------------------------------------------------
start_daemon
t_daemon_ready() {
  poll 60 daemon_ready || { cat "$T/logs/daemon.log"; return 1; }
  [ -S /nix/var/nix/daemon-socket/socket ]
  [ "$(stat -c %a /nix/var/nix/daemon-socket)" = 755 ]
}
check "nix-daemon: entrypoint-daemon.sh serves the volume's store; its readiness probe answers" t_daemon_ready

# --- user container (idle timeout long enough not to interfere) ------------------------
start_user 1800
t_user_ready() {
  poll 90 sshd_ready || { cat "$T/logs/user.log"; return 1; }
  grep -q 'nix-daemon answers' "$T/logs/user.log"
  [ "$(stat -c '%a %u' /run/trampoline/sshd)" = "700 1000" ]
  [ "$(stat -c '%a %u' /run/trampoline/sshd/ssh_host_ed25519_key)" = "600 1000" ]
  [ "$(stat -c '%a %u' /run/trampoline/sshd/authorized_keys)" = "600 1000" ]
  # The pinned key from the Secret, not one made up in the pod.
  cmp /run/trampoline/sshd/ssh_host_ed25519_key /etc/trampoline/ssh/ssh_host_ed25519_key
  [ "$(ls /run/trampoline/sshd | tr '\n' ' ')" = "authorized_keys ssh_host_ed25519_key ssh_host_ed25519_key.pub sshd.pid " ]
}
check "user: entrypoint-user.sh waits for the daemon, copies the Secret's keys into private files, sshd ready on 2222" t_user_ready

t_registered() { user_exec nix-store --check-validity "$IMG_P1" "$IMG_P2"; }
check "store: the image's store paths copied by store-init are valid to the daemon" t_registered

t_build() {
  local out
  out=$(cd / && user_exec nix-build "$T/hello.nix" --out-link "$ROOTS/hello")
  [[ $out == /nix/store/*-hello-trampoline ]]
  [ "$(readlink "$ROOTS/hello")" = "$out" ]
  [ "$(user_exec "$ROOTS/hello/bin/hello")" = "Hello from trampoline" ]
  [ "$(cat "$out/build-dir")" = /build ] || { echo "not sandboxed: built in $(cat "$out/build-dir")"; return 1; }
  [ "$(cat "$out/network")" = no ]
  [ "$(stat -c %U "$out")" = root ]
}
check "build: UID 1000 builds hello.nix offline through the daemon, sandboxed, rooted under gcroots/trampoline" t_build

# --- sshd -----------------------------------------------------------------------------
t_ssh_pinned() {
  local out
  out=$(pod_ssh "$T/keys/client" 'echo "$(id -u) $(id -g) $NIX_REMOTE $HOME"; command -v nix-daemon; nix --version')
  echo "$out"
  [ "$(sed -n 1p <<<"$out")" = "1000 1000 daemon /home/trampoline" ]
  [[ $(sed -n 2p <<<"$out") == */nix-daemon ]]
  [[ $(sed -n 3p <<<"$out") == nix* ]]
  # Non-interactive session commands reach the daemon.
  [ "$(pod_ssh "$T/keys/client" "nix-store --check-validity $ROOTS/hello && echo ok")" = ok ]
}
check "ssh: the pinned host key and the authorized key log in as trampoline; nix on PATH with NIX_REMOTE=daemon" t_ssh_pinned

t_ssh_rejects() {
  ! pod_ssh "$T/keys/other" true 2>"$T/logs/ssh-other" || return 1
  grep -q 'Permission denied' "$T/logs/ssh-other"
  ! ssh -F /dev/null -i "$T/keys/client" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$T/known_hosts" \
    -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -p 2222 root@127.0.0.1 true 2>/dev/null || return 1
  ! ssh -F /dev/null -o PubkeyAuthentication=no -o PasswordAuthentication=yes -o KbdInteractiveAuthentication=yes \
    -o BatchMode=yes -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
    -p 2222 trampoline@127.0.0.1 true 2>"$T/logs/ssh-password" || return 1
  grep -q 'Permission denied (publickey)' "$T/logs/ssh-password"
  # A client pinning a different host key refuses the server.
  ! ssh -F /dev/null -i "$T/keys/client" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$T/known_hosts.wrong" \
    -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -p 2222 trampoline@127.0.0.1 true 2>"$T/logs/ssh-wrong-host" || return 1
  grep -q 'REMOTE HOST IDENTIFICATION HAS CHANGED\|Host key verification failed' "$T/logs/ssh-wrong-host"
}
check "ssh: another key, root, passwords and a client pinning another host key are all refused" t_ssh_rejects

t_ssh_ng() {
  local path
  mkdir -p "$T/cstore" "$T/to-pod"
  echo "copied over ssh-ng $RANDOM" > "$T/to-pod/file"
  path=$(client_nix nix-store --store "$T/cstore" --add "$T/to-pod")
  client_nix nix store ping --store ssh-ng://pod
  client_nix nix copy --no-check-sigs --from "$T/cstore" --to ssh-ng://pod "$path"
  user_exec nix-store --check-validity "$path"
  # And back: a build result from the pod into a local store (copy-closure --from).
  client_nix nix copy --no-check-sigs --from ssh-ng://pod --to "$T/cstore" "$(readlink "$ROOTS/hello")"
  [ -e "$T/cstore$(readlink "$ROOTS/hello")/bin/hello" ]
}
check "ssh-ng: nix store ping, nix copy --to and --from the pod over sshd (nix-daemon --stdio)" t_ssh_ng

# --- push-receive (the workspace; t-workspace.sh has the rest) ----------------------------
# shellcheck source=workspace-lib.sh
source "$HERE/workspace-lib.sh"
git init -q -b main "$T/repo"
git -C "$T/repo" config user.email t@example.invalid
git -C "$T/repo" config user.name test
push_commit() { # push_commit N: a new commit, its tree id printed (and its tar in $T/tree-N.tar)
  mkdir -p "$T/repo/sub"
  echo "version $1" > "$T/repo/README"
  for i in $(seq 1 40); do echo "$1 $i" > "$T/repo/sub/file$i"; done
  git -C "$T/repo" add -A && git -C "$T/repo" commit -qm "v$1"
  git -C "$T/repo" archive --format=tar HEAD > "$T/tree-$1.tar"
  git -C "$T/repo" rev-parse 'HEAD^{tree}'
}
# push TREE: push $T/repo (at TREE, its HEAD) into /workspace as the CLI does.
push() {
  [ "$(git -C "$T/repo" rev-parse 'HEAD^{tree}')" = "$1" ] || { echo "push: $T/repo is not at $1"; return 1; }
  ws_push "$T/repo"
}
TREE1=$(push_commit 1)
TREE2=$(push_commit 2)

t_push_good() {
  local out inode
  git -C "$T/repo" checkout -q HEAD~1
  out=$(push "$TREE1" 2>&1)
  [ -z "$out" ] || { echo "printed: $out"; return 1; }
  [ -d /workspace/src/.git ] && [ ! -L /workspace/src ] || return 1
  [ "$(cat /workspace/src/README)" = "version 1" ] && [ -e /workspace/src/sub/file40 ] || return 1
  [ "$(stat -c %u /workspace/src/README)" = 1000 ]
  [ -e /run/trampoline/last-push ] && [ $(( $(date +%s) - $(stat -c %Y /run/trampoline/last-push) )) -lt 30 ] || return 1
  inode=$(stat -c %i /workspace/src)
  git -C "$T/repo" checkout -q main
  push "$TREE2"
  [ "$(cat /workspace/src/README)" = "version 2" ] && [ "$(stat -c %i /workspace/src)" = "$inode" ] || return 1
  ws_same "$T/repo" "$TREE2" /workspace/src
  [ "$(ls /workspace/.trees)" = pushed ]
}
check "push: /workspace/src becomes a git work tree at the pushed tree, updated in place (same path and inode), push recorded" t_push_good

TREE3=$(push_commit 3)
t_push_bad() {
  ! head -c 20000 /dev/urandom | ws_receive receive --tree "$TREE3" --base "$(git -C "$T/repo" rev-parse HEAD)" --from "$TREE2" 2>"$T/logs/push-corrupt" || return 1
  grep -q 'corrupt' "$T/logs/push-corrupt"
  ! ws_receive receive --tree '../etc' --base - < /dev/null 2>"$T/logs/push-badid" || return 1
  grep -q usage "$T/logs/push-badid"
  [ "$(cat /workspace/src/README)" = "version 2" ]
  push "$TREE3"
  [ "$(cat /workspace/src/README)" = "version 3" ]
}
check "push: random bytes and a bad tree id fail with a message; src untouched; the next push works" t_push_bad

# --- maintenance ----------------------------------------------------------------------
t_maintenance() {
  local garbage dupa dupb out before after freed
  head -c 4000000 /dev/urandom > "$T/garbage.bin"
  mkdir -p "$T/dup-a" "$T/dup-b"
  head -c 1000000 /dev/urandom > "$T/dup-a/blob"
  cp "$T/dup-a/blob" "$T/dup-b/blob"
  chmod -R a+rX "$T/garbage.bin" "$T/dup-a" "$T/dup-b"
  garbage=$(user_exec nix-store --add "$T/garbage.bin")
  dupa=$(user_exec nix-store --add "$T/dup-a")
  dupb=$(user_exec nix-store --add "$T/dup-b")
  user_exec ln -sfn "$dupa" "$ROOTS/dup-a"
  user_exec ln -sfn "$dupb" "$ROOTS/dup-b"
  [ "$(stat -c %i "$dupa/blob")" != "$(stat -c %i "$dupb/blob")" ]
  # GC alone first: optimise adds its .links directory, which costs some bytes back.
  out=$(user_script /opt/trampoline/maintenance.sh --no-optimise 2>"$T/logs/maintenance.err")
  echo "$out"
  [ "$(wc -l <<<"$out")" = 1 ]
  before=$(json_field before <<<"$out") after=$(json_field after <<<"$out") freed=$(json_field freed <<<"$out")
  [ "$freed" = $((before - after)) ]
  [ "$after" -gt 0 ]
  [ "$freed" -ge 4000000 ] || { echo "freed only $freed"; return 1; }
  ! user_exec nix-store --check-validity "$garbage" 2>/dev/null || return 1
  [ ! -e "$garbage" ]
  user_exec nix-store --check-validity "$dupa" "$dupb" "$(readlink "$ROOTS/hello")" "$IMG_P2"
  [ "$(cat /workspace/src/README)" = "version 3" ]
  out=$(user_script /opt/trampoline/maintenance.sh 2>>"$T/logs/maintenance.err")
  echo "$out"
  [ "$(wc -l <<<"$out")" = 1 ]
  before=$(json_field before <<<"$out") after=$(json_field after <<<"$out")
  json_is "$out" freed $((before > after ? before - after : 0))
  # optimise hard-linked the identical files
  [ "$(stat -c %i "$dupa/blob")" = "$(stat -c %i "$dupb/blob")" ]
}
check "maintenance: GC frees unrooted paths (the old image too), keeps rooted results and the current image, optimises; one JSON line" t_maintenance

# --- idle monitor decisions (--check) -------------------------------------------------
# A run dir of our own for the timestamps (the live monitor keeps touching the real one);
# the sshd listener and monitor pids come from the live one.
mkdir -p "$T/rundir/sshd"
chmod -R 0755 "$T/rundir"
cp /run/trampoline/sshd/sshd.pid "$T/rundir/sshd/sshd.pid"
cp /run/trampoline/monitor.pid "$T/rundir/monitor.pid"
decide() { # decide TIMEOUT: the decision, timestamps from $T/rundir
  user_script env TRAMPOLINE_RUN_DIR="$T/rundir" TRAMPOLINE_IDLE_TIMEOUT="$1" /opt/trampoline/shutdown-monitor.sh --check
}
ago() { touch -d "@$(( $(date +%s) - $2 ))" "$1"; }
# Activity entries of the live container, seen from an exec.
active_entries() { active_of "$(decide 1800)"; }
no_activity() { [ -z "$(active_entries)" ]; }
has_active() { active_entries | grep -q "$1"; }

t_decide_idle() {
  local d
  poll 120 no_activity || { active_entries; return 1; }
  ago "$T/rundir/last-active" 100
  rm -f "$T/rundir/last-push"
  d=$(decide 50); echo "$d"
  json_is "$d" idle true
  json_between "$d" idleSeconds 100 130
  json_is "$d" active '[]'
  json_is "$d" timeout 50
  json_is "$d" lastPush null
  d=$(decide 0); echo "$d"
  json_is "$d" idle false
  json_between "$d" idleSeconds 100
  d=$(decide 1800)
  json_is "$d" idle false
}
check "monitor: no activity past the timeout is idle; timeout 0 never is; below it is not" t_decide_idle

t_decide_push() {
  local d
  ago "$T/rundir/last-active" 100
  ago "$T/rundir/last-push" 10
  d=$(decide 50); echo "$d"
  json_is "$d" idle false
  json_between "$d" idleSeconds 10 40
  json_between "$d" lastPush 0
  rm -f "$T/rundir/last-push"
}
check "monitor: a push within the timeout keeps the pod" t_decide_push

t_decide_exec() {
  local session d
  ago "$T/rundir/last-active" 100
  user_exec sleep 600 &
  session=$!
  poll 120 has_active '^exec .*sleep 600' || true
  d=$(decide 50); echo "$d"
  kill_tree "$session"; wait "$session" 2>/dev/null || true
  json_is "$d" idle false
  json_is "$d" idleSeconds 0
  grep -q '^exec .*sleep 600' <<<"$(active_of "$d")"
  poll 120 no_activity || { user_exec ps -eo pid,ppid,stat,user,args; return 1; }
}
check "monitor: an exec'd session (parent outside the container) is activity" t_decide_exec

# fake_proc DIR PID PPID COMM STATE ARGV...: one /proc entry of a made-up process table.
fake_proc() {
  local dir=$1/$2
  mkdir -p "$dir"
  printf '%s (%s) %s %s 0 0 0\n' "$2" "$4" "$5" "$3" >"$dir/stat"
  printf '%s\0' "${@:6}" >"$dir/cmdline"
  chmod -R a+rX "$dir"
}
t_decide_parent_gone() {
  # A scan reads one process after another: a parent can end between its child's read and
  # its own (no entry, or a zombie). The monitor once died of that under load ("unbound
  # variable"), taking the user container with it.
  local f=$T/fakeproc out
  rm -rf "$f" && mkdir -p "$f" && chmod 755 "$f"
  fake_proc "$f" 1 0 bash S bash /opt/trampoline/entrypoint-user.sh
  fake_proc "$f" 50 40 sleep S sleep 100
  fake_proc "$f" 55 0 bash Z bash
  fake_proc "$f" 60 55 make S make -j2
  out=$(user_script env TRAMPOLINE_PROC_DIR="$f" TRAMPOLINE_RUN_DIR="$T/rundir" /opt/trampoline/shutdown-monitor.sh --check)
  echo "$out"
  json_is "$out" idle false
  grep -qx 'process 50: sleep 100' <<<"$(active_of "$out")"
  grep -qx 'process 60: make -j2' <<<"$(active_of "$out")"
}
check "monitor: a parent that ends during the scan (gone, or a zombie) leaves its child counted, and the monitor running" t_decide_parent_gone

# --- connections to the user container's sshd, seen from the host side ------------------
# listener_pid: the host pid of the container's sshd listener (PID 1's sshd child).
listener_pid() {
  local c comm
  for c in $(cat /proc/"$USER_INIT"/task/*/children 2>/dev/null); do
    { read -r comm < "/proc/$c/comm"; } 2>/dev/null || continue
    [ "$comm" = sshd ] && { echo "$c"; return 0; }
  done
  return 1
}
# conn_titles: the title (cmdline) of every process below the listener, one a line.
conn_titles() {
  local p t
  for p in $(descendants "$(listener_pid)"); do
    t=$(tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null) || continue
    echo "${t%"${t##*[! ]}"}"
  done
}
# has_conn REGEX: a process below the listener is titled so (grep reads all: no SIGPIPE
# for conn_titles under pipefail).
has_conn() { conn_titles | grep -x -- "$1" >/dev/null; }
no_connections() { local l; l=$(listener_pid) && [ -z "$(descendants "$l")" ]; }
traced() { grep -q '^TracerPid:[[:space:]]*[1-9]' "/proc/$1/status"; }

# Connections held in a given state until release_holders (set as the test's EXIT trap:
# a failing check must not leave strace attached to the listener). Each hold_* returns
# once its connection is provably in that state.
HOLDERS=() TRACER=
release_holders() {
  if [ -n "$TRACER" ]; then kill -TERM "$TRACER" 2>/dev/null || true; wait "$TRACER" 2>/dev/null || true; TRACER=; fi
  local h
  for h in ${HOLDERS[@]+"${HOLDERS[@]}"}; do kill_tree "$h"; wait "$h" 2>/dev/null || true; done
  HOLDERS=()
  return 0
}
# hold_quiet: TCP open, the server's banner read, nothing sent (sshd: [accepted]).
hold_quiet() {
  rm -f "$T/held-quiet"
  (exec 5<>/dev/tcp/127.0.0.1/2222; IFS= read -r -t 30 banner <&5; echo "$banner" > "$T/held-quiet"; exec cat <&5 >/dev/null) &
  HOLDERS+=($!)
  poll 120 grep -q '^SSH-2.0-' "$T/held-quiet"
}
# hold_kex: our banner sent too; the server's first key-exchange bytes (sent only once it
# read our banner) have arrived, and we answer nothing.
hold_kex() {
  rm -f "$T/held-kex"
  (exec 5<>/dev/tcp/127.0.0.1/2222; IFS= read -r -t 30 banner <&5; printf 'SSH-2.0-held\r\n' >&5
   head -c 1 <&5 > "$T/held-kex"; exec cat <&5 >/dev/null) &
  HOLDERS+=($!)
  poll 120 test -s "$T/held-kex"
}
# hold_auth: a client mid-authentication. Its key is authorized but locked by a
# passphrase, and the askpass program never answers: the server has the user name (its
# title is `sshd: trampoline [priv]`) and waits for a signature that never comes.
hold_auth() {
  [ -e "$T/keys/client-locked" ] || {
    cp "$T/keys/client" "$T/keys/client-locked"
    ssh-keygen -q -p -P '' -N 'never typed' -f "$T/keys/client-locked" >/dev/null
  }
  printf '#!/bin/sh\necho asked > %s/held-auth\nexec sleep 300\n' "$T" > "$T/askpass-never"
  chmod 0755 "$T/askpass-never"
  rm -f "$T/held-auth"
  SSH_ASKPASS="$T/askpass-never" SSH_ASKPASS_REQUIRE=force \
    ssh -F /dev/null -i "$T/keys/client-locked" -o IdentitiesOnly=yes -o BatchMode=no \
    -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
    -o ConnectTimeout=10 -o LogLevel=ERROR -p 2222 trampoline@127.0.0.1 true </dev/null >/dev/null 2>&1 &
  HOLDERS+=($!)
  poll 120 test -e "$T/held-auth"
  poll 120 has_conn 'sshd: trampoline \[priv\]'
}
# A readiness probe, exactly as the kubelet's tcpSocket one: connect, close.
probe() { sshd_ready; }
# hold_rexec: a readiness probe (connect + close) whose connection stays in the window
# right after the accept, when sshd's child has re-executed itself with -R and shows its
# raw argv (a few ms otherwise): strace holds every new child at the end of its execve.
hold_rexec() {
  local listener
  command -v strace >/dev/null || { echo "strace is needed to hold sshd's re-exec window"; return 1; }
  listener=$(listener_pid)
  strace -f -qq -o "$T/logs/strace-rexec" -e trace=execve -e inject=execve:delay_exit=120000000 -p "$listener" &
  TRACER=$!
  poll 120 traced "$listener"
  probe
  poll 120 has_conn '.*sshd .* -R'
}
t_decide_ssh() {
  local session d
  ago "$T/rundir/last-active" 100
  rm -f "$T/logs/ssh-started"
  # `cat` ends when the connection does (a `sleep` would outlive it as an orphan, which
  # the monitor rightly counts). The line printed by the session's command proves the
  # session is authenticated and its command runs: then the decision is taken.
  (sleep 600 | pod_ssh "$T/keys/client" 'echo started; exec cat >/dev/null') >"$T/logs/ssh-started" 2>&1 &
  session=$!
  poll 120 grep -qx started "$T/logs/ssh-started" || { cat "$T/logs/ssh-started"; return 1; }
  d=$(decide 50); echo "$d"
  kill_tree "$session"; wait "$session" 2>/dev/null || true
  json_is "$d" idle false
  json_is "$d" idleSeconds 0
  # The ssh entries' titles ("ssh <pid>: <title>"): exactly this one.
  [ "$(sed -n 's/^ssh [^:]*: //p' <<<"$(active_of "$d")")" = "sshd: trampoline@notty" ]
  not grep -q '^process ' <<<"$(active_of "$d")"
  poll 120 no_activity || { user_exec ps -eo pid,ppid,stat,user,args; return 1; }
}
check "monitor: an authenticated SSH session running a command is activity, one entry (the sshd listener itself is not)" t_decide_ssh

t_decide_forward() {
  local session d
  ago "$T/rundir/last-active" 100
  rm -f "$T/logs/ssh-forward"
  # No command at all (ssh -N), only a remote forward: the session's only process is
  # sshd's own. The port the client reports was allocated by that process.
  ssh -F /dev/null -i "$T/keys/client" -o IdentitiesOnly=yes -o BatchMode=yes -o UserKnownHostsFile="$T/known_hosts" \
    -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null -o LogLevel=INFO -E "$T/logs/ssh-forward" \
    -N -o ExitOnForwardFailure=yes -R 127.0.0.1:0:127.0.0.1:9 -p 2222 trampoline@127.0.0.1 &
  session=$!
  poll 120 grep -q '^Allocated port ' "$T/logs/ssh-forward" || { cat "$T/logs/ssh-forward"; return 1; }
  d=$(decide 50); echo "$d"
  kill_tree "$session"; wait "$session" 2>/dev/null || true
  json_is "$d" idle false
  [ "$(sed -n 's/^ssh [^:]*: //p' <<<"$(active_of "$d")")" = "sshd: trampoline" ]
  poll 120 no_activity || { user_exec ps -eo pid,ppid,stat,user,args; return 1; }
}
check "monitor: a forwarding-only SSH session (ssh -N, no command) is activity" t_decide_forward

t_decide_orphan() {
  local d pid
  ago "$T/rundir/last-active" 100
  user_exec bash -c 'setsid sleep 600 </dev/null >/dev/null 2>&1 & exit 0'
  d=$(decide 50); echo "$d"
  pid=$(sed -n 's/^process \([0-9]*\):.*/\1/p' <<<"$(active_of "$d")" | head -n 1)
  user_exec kill "$pid"
  json_is "$d" idle false
  grep -q '^process .*sleep 600' <<<"$(active_of "$d")"
  poll 120 no_activity || { user_exec ps -eo pid,ppid,stat,user,args; return 1; }
}
check "monitor: a process left running by a finished session (re-parented to PID 1) is activity" t_decide_orphan

t_decide_preauth() {
  local d
  trap release_holders EXIT
  ago "$T/rundir/last-active" 100
  poll 120 no_activity || { active_entries; return 1; }
  poll 120 no_connections || { conn_titles; return 1; }
  hold_quiet
  hold_kex
  hold_auth
  conn_titles
  d=$(decide 1800); echo "$d"
  release_holders
  json_is "$d" active '[]'
  json_between "$d" idleSeconds 100
  poll 120 no_connections || { conn_titles; return 1; }
}
check "monitor: connections still authenticating (banner only, key exchange, user name sent and key pending) are not sessions" t_decide_preauth

t_decide_rexec() {
  local d
  trap release_holders EXIT
  ago "$T/rundir/last-active" 100
  poll 120 no_activity || { active_entries; return 1; }
  poll 120 no_connections || { conn_titles; return 1; }
  hold_rexec
  conn_titles
  d=$(decide 1800); echo "$d"
  release_holders
  json_is "$d" active '[]'
  json_between "$d" idleSeconds 100
  poll 120 no_connections || { conn_titles; return 1; }
}
check "monitor: a readiness probe held in sshd's re-exec window (raw argv 'sshd ... -R') is not a session" t_decide_rexec

# The live monitor (the loop started by entrypoint-user.sh, 1s interval) against probes
# and connections that never authenticate: its idle clock (last-active) must not move.
live_mtime() { stat -c %.9Y /run/trampoline/monitor.json; }
live_written_after() { [[ $(live_mtime) > $1 ]]; }
# live_scans N: return after N more writes of monitor.json, so the last one's scan began
# after this call (the loop scans, writes, sleeps, scans...).
live_scans() {
  local i m
  for i in $(seq 1 "$1"); do
    m=$(live_mtime)
    poll 120 live_written_after "$m" || return 1
  done
}
t_idle_clock() {
  local since d held deadline m n=0 writes=0
  trap release_holders EXIT
  poll 120 no_activity || { active_entries; return 1; }
  poll 120 no_connections || { conn_titles; return 1; }
  # A write that started after the check's own exec: any touch of last-active it made is done.
  live_scans 2
  since=$(( $(date +%s) - 100 ))
  touch -d "@$since" /run/trampoline/last-active
  [ ! -e /run/trampoline/last-push ] || touch -d "@$since" /run/trampoline/last-push
  hold_quiet
  hold_kex
  hold_auth
  hold_rexec
  conn_titles
  live_scans 2
  cp /run/trampoline/monitor.json "$T/monitor-held.json"
  # Still held after those scans (LoginGraceTime is 30s): the scans saw every state.
  if ! { has_conn 'sshd: \[accepted\]' && has_conn 'sshd: trampoline \[priv\]' && has_conn '.*sshd .* -R'; }; then
    conn_titles; return 1
  fi
  # Let the re-exec'd child go, then probe again and again through two more scans.
  release_holders
  deadline=$((SECONDS + 60)) m=$(live_mtime)
  until [ "$writes" -ge 2 ]; do
    probe || true; n=$((n + 1))
    if live_written_after "$m"; then writes=$((writes + 1)) m=$(live_mtime); fi
    [ "$SECONDS" -lt "$deadline" ] || { echo "the monitor wrote $writes times in 60s"; return 1; }
  done
  echo "$n probes"
  d=$(cat /run/trampoline/monitor.json)
  cat "$T/monitor-held.json"; echo "$d"
  [ "$(stat -c %Y /run/trampoline/last-active)" = "$since" ] || { echo "last-active moved to $(stat -c %Y /run/trampoline/last-active), set to $since"; return 1; }
  held=$(cat "$T/monitor-held.json")
  json_is "$held" active '[]'
  json_is "$held" idle false
  json_between "$held" idleSeconds 100
  json_is "$d" active '[]'
  json_between "$d" idleSeconds 100
  touch /run/trampoline/last-active
  poll 120 no_connections || { conn_titles; return 1; }
}
check "monitor: readiness probes and connections that never authenticate (re-exec window included) leave the live monitor's idle clock alone" t_idle_clock

t_monitor_json() {
  local j
  j=$(cat /run/trampoline/monitor.json); echo "$j"
  json_is "$j" timeout 1800
  json_is "$j" idle false
  json_between "$j" idleSeconds 0
  [[ $(json_field active <<<"$j") == \[* ]]
  json_between "$j" checkedAt $(($(date +%s) - 14))
}
check "monitor: the running monitor keeps /run/trampoline/monitor.json current" t_monitor_json

# --- the whole lifecycle with a short timeout ------------------------------------------
# The 3s timeout runs from the monitor's start. So that no step races it, an exec'd
# session is open before the monitor starts (the user container waits for the
# nix-daemon, stopped meanwhile), and ends only once the monitor has seen the SSH
# session and the build.
stop_container "$USER_CTR"
stop_container "$DAEMON"
rm -f /run/trampoline/last-push "$T/logs/holder" "$T/logs/ssh-session"
start_user 3
(user_exec sh -c 'echo holding; exec sleep 600') >"$T/logs/holder" 2>&1 &
HOLDER=$!
poll 120 grep -qx holding "$T/logs/holder" || cat "$T/logs/holder"
start_daemon
poll 60 daemon_ready || cat "$T/logs/daemon.log"
poll 90 sshd_ready || cat "$T/logs/user.log"
t0=$SECONDS
# The live monitor.json: a build and an SSH session are activity; a scan at or after a time.
live_building() {
  local active
  active=$(json_field 'active.*' </run/trampoline/monitor.json) &&
    grep -q '^exec .*nix-build' <<<"$active" && grep -q '^ssh ' <<<"$active"
}
live_checked_since() { json_between "$(cat /run/trampoline/monitor.json)" checkedAt "$1"; }
(sleep 600 | pod_ssh "$T/keys/client" 'echo started; exec cat >/dev/null') >"$T/logs/ssh-session" 2>&1 &
SESSION=$!
poll 120 grep -qx started "$T/logs/ssh-session" || cat "$T/logs/ssh-session"
(cd / && user_exec nix-build "$T/slow.nix" --argstr seconds 8 --argstr salt "$RANDOM" --no-out-link) >"$T/logs/slow-build" 2>&1 &
BUILD=$!
poll 120 live_building || true
cp /run/trampoline/monitor.json "$T/monitor-during-build.json" 2>/dev/null || true
ALIVE_DURING_BUILD=$(running "$USER_CTR" && echo yes || echo no)
kill_tree "$HOLDER"; wait "$HOLDER" 2>/dev/null || true
set +e
wait "$BUILD"; BUILD_STATUS=$?
set -e
BUILD_END=$(date +%s)
# The SSH session alone, past the timeout: a scan 4s after the build still sees it.
poll 120 live_checked_since $((BUILD_END + 4)) || true
cp /run/trampoline/monitor.json "$T/monitor-after-build.json" 2>/dev/null || true
ALIVE_AFTER_BUILD=$(running "$USER_CTR" && echo yes || echo no)
kill_tree "$SESSION"; wait "$SESSION" 2>/dev/null || true
SESSION_END=$SECONDS
poll 120 not running "$USER_CTR" || true
set +e
if running "$USER_CTR"; then USER_STATUS=running; else wait "$USER_CTR"; USER_STATUS=$?; fi
USER_END=$SECONDS
poll 120 not running "$DAEMON" || true
if running "$DAEMON"; then DAEMON_STATUS=running; else wait "$DAEMON"; DAEMON_STATUS=$?; fi
set -e
note "build ${BUILD_STATUS}, session ended at +$((SESSION_END - t0))s, user container ended at +$((USER_END - t0))s"

t_busy_not_stopped() {
  cat "$T/monitor-during-build.json" "$T/monitor-after-build.json"
  [ "$ALIVE_DURING_BUILD" = yes ] && [ "$ALIVE_AFTER_BUILD" = yes ] || return 1
  [ "$BUILD_STATUS" = 0 ] || { cat "$T/logs/slow-build"; return 1; }
  local during after
  during=$(cat "$T/monitor-during-build.json") after=$(cat "$T/monitor-after-build.json")
  json_is "$during" idle false
  grep -q '^exec .*nix-build' <<<"$(active_of "$during")"
  grep -q '^ssh ' <<<"$(active_of "$during")"
  json_is "$after" idle false
  # Only the SSH session is left.
  [ -z "$(grep -v '^ssh ' <<<"$(active_of "$after")")" ]
  grep -q '^ssh ' <<<"$(active_of "$after")"
}
check "lifecycle: with a 3s timeout the pod stays up through an 8s build and an SSH session lasting over 4s longer" t_busy_not_stopped

t_idle_shutdown() {
  [ "$USER_STATUS" = 0 ] || { echo "user container: $USER_STATUS"; tail -n 20 "$T/logs/user.log"; return 1; }
  # Not before the timeout (counted from the last sample that saw the session).
  [ $((USER_END - SESSION_END)) -ge 1 ] || { echo "stopped $((USER_END - SESSION_END))s after the last session"; return 1; }
  [ "$(sed -n "s/^idle: no activity for \([0-9]*\)s.*/\1/p" /run/trampoline/shutdown)" -ge 3 ]
  grep -q '^idle: no activity for [0-9]*s (timeout 3s)$' /run/trampoline/shutdown
  grep -q '^idle: ' "$T/term-user"
  json_is "$(cat /run/trampoline/monitor.json)" idle true
  grep -q '^entrypoint-user: stopped: idle: ' "$T/logs/user.log"
}
check "lifecycle: idle after the last session, the user container exits 0 with 'idle: <reason>'" t_idle_shutdown

t_daemon_exits() {
  [ "$DAEMON_STATUS" = 0 ] || { echo "nix-daemon container: $DAEMON_STATUS"; tail -n 20 "$T/logs/daemon.log"; return 1; }
  grep -q '^idle: no activity' "$T/term-daemon"
}
check "lifecycle: the nix-daemon container sees the request and exits 0 with 'idle: <reason>'" t_daemon_exits

start_user 3
poll 120 not running "$USER_CTR" || true
set +e; if running "$USER_CTR"; then RESTART_STATUS=running; else wait "$USER_CTR"; RESTART_STATUS=$?; fi; set -e
start_daemon
poll 120 not running "$DAEMON" || true
set +e; if running "$DAEMON"; then RESTART_D_STATUS=running; else wait "$DAEMON"; RESTART_D_STATUS=$?; fi; set -e
t_stays_stopped() {
  [ "$RESTART_STATUS" = 0 ] && [ "$RESTART_D_STATUS" = 0 ] || return 1
  grep -q '^idle: ' "$T/term-user" && grep -q '^idle: ' "$T/term-daemon"
}
check "lifecycle: containers restarted after the shutdown request stay stopped (exit 0)" t_stays_stopped
