# shellcheck shell=bash
# Helpers for container/tests/run.sh (sourced inside the test's own mount + network
# namespaces). A "pod" here is this namespace: /nix, /workspace, /home/trampoline,
# /run/trampoline, /opt/trampoline and /etc/trampoline/ssh are mounts private to it.
# Each "container" is a PID namespace of its own (unshare --pid), like in Kubernetes,
# and an "exec" enters it from outside (nsenter), so its parent pid inside is 0.
# log, pass, fail, check, poll, json_field and summary: test/lib.sh. Each check's output
# and trace go to $T/logs, shown when it fails.

# shellcheck source=test/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../test/lib.sh"
CHECK_LOG_DIR=$T/logs
# The in-pod scripts run with PATH holding only what the official nixos/nix image ships
# (make_toolset): a script that needs anything else fails here, not on a user's cluster.
export TOOLSET=$T/toolset/bin
USER_ENV=(HOME=/home/trampoline USER=trampoline LOGNAME=trampoline
  PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin NIX_REMOTE=daemon NIX_CONF_DIR=/opt/trampoline)
AS_USER=(setpriv --reuid=1000 --regid=1000 --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs)

# note TEXT: a remark in the test's log, beside the checks (not a section).
note() { echo "    $*" >&2; }

# make_toolset: $TOOLSET with the tools of Nix's docker.nix image, linked from this host:
# bash (also as sh), coreutils, tar, gzip, grep, findutils, which, curl, wget, less, man,
# git, openssh and nix. Nothing else: no sed, awk, util-linux (flock), procps.
make_toolset() {
  local tool path
  mkdir -p "$TOOLSET"
  local tools=(bash tar gzip gunzip zcat grep egrep fgrep find xargs which curl wget less man git
    ssh ssh-keygen ssh-add scp sftp sshd)
  mapfile -t -O "${#tools[@]}" tools < <(dpkg -L coreutils | grep -E '^/(usr/)?s?bin/[^/]+$' | xargs -n1 basename)
  mapfile -t -O "${#tools[@]}" tools < <(dpkg -L nix-bin | grep -E '^/(usr/)?s?bin/[^/]+$' | xargs -n1 basename)
  for tool in "${tools[@]}"; do
    path=$(PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin command -v "$tool") || continue
    ln -sfn "$path" "$TOOLSET/$tool"
  done
  ln -sfn "$(command -v bash)" "$TOOLSET/sh"
}

not() { ! "$@"; }

# The host pid of a container's PID 1 (the child of its unshare process).
init_pid() {
  local children
  children=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
  echo "${children%% *}"
}

has_init() { [ -n "$(init_pid "$1")" ]; }
# started PID: its PID 1 is up, or the container already ended (a fast exit, e.g. a
# restart after the shutdown request, may never be seen running).
started() { has_init "$1" || ! running "$1"; }

# running PID: alive and not a zombie waiting to be reaped.
running() {
  local stat
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# descendants PID: every process below PID (host pids), deepest last.
descendants() {
  local child
  for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

# kill_tree PID: SIGKILL PID and everything below it (processes this test started).
kill_tree() {
  local pids
  pids="$1 $(descendants "$1")"
  # shellcheck disable=SC2086
  kill -KILL $pids 2>/dev/null || true
}

# start_daemon: the nix-daemon container, running entrypoint-daemon.sh as its PID 1.
start_daemon() {
  rm -f "$T/term-daemon"; install -m 0644 /dev/null "$T/term-daemon"
  # Tests are offline: the pod spec's TRAMPOLINE_SUBSTITUTERS, set to no cache.
  unshare --pid --fork --mount-proc env -i PATH="$TOOLSET" \
    NIX_CONF_DIR=/opt/trampoline TRAMPOLINE_TERMINATION_LOG="$T/term-daemon" TRAMPOLINE_SUBSTITUTERS= \
    /opt/trampoline/entrypoint-daemon.sh >>"$T/logs/daemon.log" 2>&1 &
  DAEMON=$!
  poll 120 started "$DAEMON"
  DAEMON_INIT=$(init_pid "$DAEMON")
}

daemon_exec() {
  nsenter --target "$DAEMON_INIT" --pid --mount -- env -i PATH=/usr/bin:/bin:/usr/sbin:/sbin NIX_CONF_DIR=/opt/trampoline "$@"
}

# The readiness probe of k8s-pod.yaml's nix-daemon container, run the same way.
daemon_ready() {
  daemon_exec nix --extra-experimental-features nix-command store ping --store daemon
}

# start_user TIMEOUT: the user container (UID 1000, no capabilities) with
# entrypoint-user.sh as PID 1 and the given idle timeout.
start_user() {
  # The kubelet provides /dev/termination-log as a file the container may write.
  rm -f "$T/term-user" "$T/user-gone-told"; install -m 0644 -o 1000 -g 1000 /dev/null "$T/term-user"
  unshare --pid --fork --mount-proc "${AS_USER[@]}" env -i "${USER_ENV[@]}" PATH="$TOOLSET" \
    TRAMPOLINE_IDLE_TIMEOUT="$1" TRAMPOLINE_MONITOR_INTERVAL=1 TRAMPOLINE_DAEMON_WAIT=60 \
    TRAMPOLINE_TERMINATION_LOG="$T/term-user" \
    /opt/trampoline/entrypoint-user.sh >>"$T/logs/user.log" 2>&1 &
  USER_CTR=$!
  poll 120 started "$USER_CTR"
  USER_INIT=$(init_pid "$USER_CTR")
}

# user_exec CMD...: like `kubectl exec` into the user container, as UID 1000. A container
# that ended under a test says why, once (its termination message and the end of its log).
user_exec() {
  if [ ! -d "/proc/$USER_INIT" ] && [ ! -e "$T/user-gone-told" ]; then
    : >"$T/user-gone-told"
    echo "the user container (init $USER_INIT) is gone; termination message: $(cat "$T/term-user" 2>/dev/null)" >&2
    tail -n 20 "$T/logs/user.log" | sed 's/^/  user.log: /' >&2
  fi
  nsenter --target "$USER_INIT" --pid --mount -- "${AS_USER[@]}" env -i "${USER_ENV[@]}" "$@"
}

# user_script SCRIPT ARGS...: an in-pod script as the CLI execs it, with only the toolset.
user_script() { user_exec env PATH="$TOOLSET" "$@"; }

# The user container's readiness probe (tcpSocket 2222).
sshd_ready() { (exec 3<>/dev/tcp/127.0.0.1/2222) 2>/dev/null; }

# stop_container PID: end a container (its PID 1 and so its namespace), bounded.
stop_container() {
  local pid=$1 init
  [ -n "$pid" ] && running "$pid" || { [ -z "$pid" ] || wait "$pid" 2>/dev/null; return 0; }
  init=$(init_pid "$pid")
  [ -n "$init" ] && kill -TERM "$init" 2>/dev/null
  poll 120 not running "$pid" || { [ -n "$init" ] && kill -KILL "$init" 2>/dev/null; kill -KILL "$pid" 2>/dev/null; }
  wait "$pid" 2>/dev/null || true
}

# ssh to the user container's sshd with a pinned host key and the given identity.
pod_ssh() {
  local key=$1
  shift
  ssh -F /dev/null -i "$key" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$T/known_hosts" -o StrictHostKeyChecking=yes -o GlobalKnownHostsFile=/dev/null \
    -o ConnectTimeout=10 -o LogLevel=ERROR -p 2222 trampoline@127.0.0.1 "$@"
}

# monitor_check: the monitor's decision as seen from an exec in the user container.
monitor_check() {
  user_script env TRAMPOLINE_IDLE_TIMEOUT="${1:-1800}" /opt/trampoline/shutdown-monitor.sh --check
}

# json_is JSON PATH WANT: the field at PATH (json_field's) of JSON prints as WANT.
json_is() {
  local got
  got=$(json_field "$2" <<<"$1")
  [ "$got" = "$3" ] || { echo "$2 is $got, not $3"; return 1; }
}
# json_between JSON PATH MIN [MAX]: the number at PATH is at least MIN (and at most MAX).
json_between() {
  local got
  got=$(json_field "$2" <<<"$1")
  [[ $got =~ ^-?[0-9]+$ ]] && [ "$got" -ge "$3" ] && [ "$got" -le "${4:-$got}" ] ||
    { echo "$2 is $got, not in $3..${4:-}"; return 1; }
}
# active_of JSON: a monitor decision's activity entries ("exec 12: sleep 30"), one a line.
active_of() { json_field 'active.*' <<<"$1"; }
