#!/usr/bin/env bash
# The user container (UID 1000, no privileges): wait for the pod's nix-daemon, run a
# non-root sshd on 2222 with the instance's pinned keys, and run the idle monitor.
# Exits 0 when the monitor shuts the pod down for idleness, non-zero if sshd or the
# monitor fails (the kubelet then restarts the container in place).
set -euo pipefail

RUN=${TRAMPOLINE_RUN_DIR:-/run/trampoline}
SECRET=${TRAMPOLINE_SSH_SECRET_DIR:-/etc/trampoline/ssh}
SCRIPTS=${TRAMPOLINE_SCRIPTS_DIR:-/opt/trampoline}
SOCKET=${TRAMPOLINE_DAEMON_SOCKET:-/nix/var/nix/daemon-socket/socket}
WAIT=${TRAMPOLINE_DAEMON_WAIT:-600}
TERMINATION_LOG=${TRAMPOLINE_TERMINATION_LOG:-/dev/termination-log}
SSHD_DIR=$RUN/sshd
export NIX_REMOTE=daemon NIX_CONF_DIR=${NIX_CONF_DIR:-$SCRIPTS}
export PATH=$HOME/.nix-profile/bin:/nix/var/nix/profiles/default/bin:$PATH

log() { echo "entrypoint-user: $*" >&2; }
fail() { log "$*"; printf '%s\n' "$*" > "$TERMINATION_LOG" 2>/dev/null || true; exit 1; }

# The pod was told to stop (we were restarted after the request): stay stopped.
if [ -e "$RUN/shutdown" ]; then
  reason=$(head -c 900 "$RUN/shutdown")
  printf '%s\n' "$reason" > "$TERMINATION_LOG" 2>/dev/null || true
  log "stopped: $reason"
  exit 0
fi

# 1. The daemon: `nix store ping` proves it answers, not just that a stale socket exists.
log "waiting for the nix-daemon at $SOCKET (up to ${WAIT}s)"
deadline=$((SECONDS + WAIT)) tries=0 why=""
daemon_answers() {
  [ -S "$SOCKET" ] || { why="no socket yet"; return 1; }
  why=$(nix --extra-experimental-features nix-command store ping --store daemon 2>&1 >/dev/null) && return 0
  why=$(printf '%s' "$why" | tr -s '\n' ' ' | cut -c1-300)
  return 1
}
until daemon_answers; do
  [ "$SECONDS" -lt "$deadline" ] || fail "the nix-daemon did not answer on $SOCKET within ${WAIT}s: $why (see the nix-daemon container's log)"
  tries=$((tries + 1))
  [ $((tries % 10)) = 0 ] && log "still waiting for the nix-daemon at $SOCKET ($((deadline - SECONDS))s left): $why"
  sleep 1
done
log "nix-daemon answers"

# 2. sshd's keys: copied from the Secret into private files (sshd refuses a host key
# others can read; the Secret volume is world-readable). Never generated here, so the
# client can pin the host key it put in the Secret.
for f in ssh_host_ed25519_key authorized_keys; do
  [ -s "$SECRET/$f" ] || fail "missing $SECRET/$f: the Secret trampoline-<instance>-ssh must hold ssh_host_ed25519_key, ssh_host_ed25519_key.pub and authorized_keys"
done
umask 077
rm -rf "$SSHD_DIR"
mkdir -m 0700 "$SSHD_DIR"
cp "$SECRET/ssh_host_ed25519_key" "$SECRET/authorized_keys" "$SSHD_DIR/"
[ -s "$SECRET/ssh_host_ed25519_key.pub" ] && cp "$SECRET/ssh_host_ed25519_key.pub" "$SSHD_DIR/"
chmod 0600 "$SSHD_DIR"/*
umask 022

SSHD=$(command -v sshd || echo /usr/sbin/sshd)
"$SSHD" -t -f "$SCRIPTS/sshd_config" || fail "sshd rejected $SCRIPTS/sshd_config"
# -D: stay in the foreground as our child; -e: log to stderr (the container log).
"$SSHD" -D -e -f "$SCRIPTS/sshd_config" &
sshd=$!
log "sshd $sshd listening on 2222"

# 3. The idle monitor; it tells sshd apart from sessions by this pid.
"$SCRIPTS/shutdown-monitor.sh" --sshd-pid "$sshd" &
monitor=$!
trap 'kill -TERM "$monitor" "$sshd" 2>/dev/null; exit 0' TERM INT

# Whichever ends first decides. An idle shutdown writes $RUN/shutdown, stops sshd, then
# the monitor exits 0.
set +e
wait -n "$sshd" "$monitor"
code=$?
if [ -e "$RUN/shutdown" ]; then
  wait "$monitor"; code=$?
  kill -TERM "$sshd" 2>/dev/null; wait "$sshd" 2>/dev/null
  [ "$code" = 0 ] || fail "the idle monitor failed with status $code during shutdown"
  log "stopped: $(head -c 900 "$RUN/shutdown")"
  exit 0
fi
if kill -0 "$monitor" 2>/dev/null; then
  kill -TERM "$monitor" 2>/dev/null; wait "$monitor" 2>/dev/null
  fail "sshd exited with status $code"
fi
kill -TERM "$sshd" 2>/dev/null; wait "$sshd" 2>/dev/null
fail "the idle monitor exited with status $code"
