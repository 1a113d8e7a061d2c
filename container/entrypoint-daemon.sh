#!/usr/bin/env bash
# The nix-daemon container (root, privileged for the build sandbox): serve the store on
# the PVC through /nix/var/nix/daemon-socket/socket until the user container's idle
# monitor asks the pod to stop (/run/trampoline/shutdown), then exit 0 so the pod can
# end as Succeeded. A daemon crash exits non-zero and the kubelet restarts us in place.
set -euo pipefail

RUN=${TRAMPOLINE_RUN_DIR:-/run/trampoline}
TERMINATION_LOG=${TRAMPOLINE_TERMINATION_LOG:-/dev/termination-log}
POLL=${TRAMPOLINE_DAEMON_POLL:-1}
export NIX_CONF_DIR=${NIX_CONF_DIR:-/opt/trampoline}
# This is the store's owner: NIX_REMOTE=daemon here would make the daemon its own client.
unset NIX_REMOTE
# Nix lives in /nix (Nix-built image) or /usr (Debian's nix-bin).
export PATH=/nix/var/nix/profiles/default/bin:$PATH

log() { echo "entrypoint-daemon: $*" >&2; }
stopped() {
  local reason=''
  # The user container writes this file: never follow a link it may have planted there.
  [ -f "$RUN/shutdown" ] && [ ! -L "$RUN/shutdown" ] && reason=$(head -c 900 "$RUN/shutdown" 2>/dev/null || true)
  reason=${reason:-idle: shutdown requested}
  # The message Kubernetes shows for this container; `idle: <reason>`.
  printf '%s\n' "$reason" > "$TERMINATION_LOG" 2>/dev/null || true
  log "stopped: $reason"
  exit 0
}

[ -r "$NIX_CONF_DIR/nix.conf" ] || { log "no nix.conf in $NIX_CONF_DIR (is the scripts ConfigMap mounted?)"; exit 1; }
command -v nix-daemon >/dev/null || { log "nix-daemon not found on PATH ($PATH)"; exit 1; }
mkdir -p "$RUN"
# Restarted after the pod was told to stop: stay stopped.
[ -e "$RUN/shutdown" ] && stopped

# The socket directory must let UID 1000 connect; a stale socket is replaced by the daemon.
mkdir -p /nix/var/nix/daemon-socket
chmod 0755 /nix/var/nix/daemon-socket

# Sign everything this daemon builds or substitutes with the instance's key, so clients
# that trust the key (copy-closure --from, the laptop's store) can check where a path
# came from. The key is mounted into this container only.
SIGNING_KEY=${TRAMPOLINE_SIGNING_KEY:-}
sign=()
if [ -n "$SIGNING_KEY" ] && [ -r "$SIGNING_KEY" ]; then
  sign=(--option secret-key-files "$SIGNING_KEY")
elif [ -n "$SIGNING_KEY" ]; then
  log "no signing key at $SIGNING_KEY: builds stay unsigned (trampoline setup creates the key)"
fi

# Binary caches: the pod spec says which (the user container's clients set none, so they
# cannot narrow or widen them). An unset variable leaves Nix's own default.
caches=()
[ -n "${TRAMPOLINE_SUBSTITUTERS+set}" ] && caches+=(--option substituters "$TRAMPOLINE_SUBSTITUTERS")
[ -n "${TRAMPOLINE_TRUSTED_PUBLIC_KEYS+set}" ] && caches+=(--option trusted-public-keys "$TRAMPOLINE_TRUSTED_PUBLIC_KEYS")
NETRC=${TRAMPOLINE_NETRC_FILE:-/etc/trampoline/netrc/netrc}
[ -r "$NETRC" ] && caches+=(--option netrc-file "$NETRC")
log "binary caches: ${TRAMPOLINE_SUBSTITUTERS-(Nix default)}"

nix-daemon ${sign[@]+"${sign[@]}"} ${caches[@]+"${caches[@]}"} &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null; wait "$daemon"; exit 0' TERM INT
log "nix-daemon $daemon serving $(nix-daemon --version 2>/dev/null | head -1)"

# Poll instead of inotify: the image need not carry inotify-tools, and a second's delay
# on an idle shutdown does not matter.
while kill -0 "$daemon" 2>/dev/null; do
  if [ -e "$RUN/shutdown" ]; then
    kill -TERM "$daemon" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$daemon" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
    stopped
  fi
  sleep "$POLL" & wait $! || true
done
set +e
wait "$daemon"
code=$?
log "nix-daemon exited with status $code"
printf 'nix-daemon exited with status %s\n' "$code" > "$TERMINATION_LOG" 2>/dev/null || true
# Never report success for a daemon that stopped by itself: that would end the pod.
exit $(( code == 0 ? 1 : code ))
