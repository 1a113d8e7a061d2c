#!/usr/bin/env bash
# The nix-daemon container (root, privileged for the build sandbox): serve the store on
# the PVC through /nix/var/nix/daemon-socket/socket until the user container's idle
# monitor asks the pod to stop (/run/trampoline/shutdown), then exit 0 so the pod can
# end as Succeeded. A daemon crash exits non-zero and the kubelet restarts us in place.
#
# The same file runs the containers of a build-farm worker pod (`setup --workers N`, a Nix
# remote builder of the instance's daemon over ssh-ng), by the first argument:
#   worker-init    init container (root; CHOWN, DAC_OVERRIDE, FOWNER, FSETID): copy the
#                  image's /nix into the worker's emptyDir store.
#   worker-daemon  nix-daemon container (root, privileged for the sandbox): the worker's
#                  Nix config, then the same daemon loop as the instance's.
#   worker-sshd    sshd container (UID 1000, no capabilities): sshd on 2222 with the farm's
#                  pinned host key, letting in only the main daemon's client key, forced to
#                  `nix-daemon --stdio`; plus the worker's idle check.
# Worker trust: the sshd container's user (trampoline, UID 1000) is a trusted Nix user of
# the worker's daemon: Nix refuses buildDerivation (how the main daemon hands over a build)
# from untrusted users. Only the instance's nix-daemon container holds the client key (the
# farm Secret's client half is mounted there only; workers get the host key and
# authorized_keys), and that daemon is root already. A worker runs nothing else: no
# workspace, no user container, no service-account token.
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

die() { log "$*"; printf '%s\n' "$*" > "$TERMINATION_LOG" 2>/dev/null || true; exit 1; }
SCRIPTS=${TRAMPOLINE_SCRIPTS_DIR:-/opt/trampoline}

# --- init: the worker's store is an emptyDir (a cache: results go back to the main store)
worker_init() {
  local image_nix=${TRAMPOLINE_IMAGE_NIX:-/nix} vol=${TRAMPOLINE_STORE_VOLUME:-/mnt/nix} nixbld
  [ -d "$vol" ] || die "the worker store volume is not mounted at $vol"
  if [ ! -e "$vol/.trampoline-initialised" ]; then
    # An emptyDir starts empty; a restarted init finds its own partial copy: start over.
    find "$vol" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
    [ -d "$image_nix/store" ] && cp -a "$image_nix/." "$vol/"
    date -u +%Y-%m-%dT%H:%M:%SZ > "$vol/.trampoline-initialised"
  fi
  nixbld=$(grep -m 1 '^nixbld:' /etc/group | cut -d: -f3 || true)
  chown 0:0 "$vol" && chmod 0755 "$vol"
  install -d -m 0755 -o 0 -g 0 "$vol/store" "$vol/var" "$vol/var/nix" "$vol/var/nix/db" \
    "$vol/var/nix/daemon-socket" "$vol/var/nix/gcroots" "$vol/var/nix/profiles" "$vol/var/log" "$vol/var/log/nix"
  chown "0:${nixbld:-0}" "$vol/store" && chmod 1775 "$vol/store"
  log "worker store ready ($(find "$vol/store" -mindepth 1 -maxdepth 1 | wc -l) paths from the image)"
}

# --- daemon ---------------------------------------------------------------------------
worker_daemon() {
  local conf_dir=${TRAMPOLINE_WORKER_CONF_DIR:-/etc/trampoline-worker}
  # trusted-users names users: the daemon must know UID 1000's name. Images such as
  # nixos/nix have no UID 1000; this container's own /etc/passwd gets it (the image's
  # nixbld users stay, so no ConfigMap passwd here).
  grep -q '^[^:]*:[^:]*:1000:' /etc/passwd || echo 'trampoline:x:1000:1000:trampoline farm builder:/var/empty:/bin/sh' >> /etc/passwd
  grep -q '^[^:]*:[^:]*:1000:' /etc/group || echo 'trampoline:x:1000:' >> /etc/group
  mkdir -p "$conf_dir"
  # The instance's settings (sandbox, build users, features), then the worker's own.
  # max-jobs: each build arrives on its own connection, with the client's max-jobs; the
  # main daemon's machines file caps how many come at once.
  cat > "$conf_dir/nix.conf" <<EOF
include $SCRIPTS/nix.conf
# A farm worker: the main daemon's build hook logs in as trampoline over ssh-ng and must
# be trusted to hand over input-addressed derivations (see the top of entrypoint-daemon.sh).
trusted-users = root trampoline
allowed-users = root trampoline
EOF
  # The main daemon's build hook forwards every setting of the main daemon to the worker
  # (Nix's RemoteStore sends its overridden settings; a trusted client's are applied),
  # secret-key-files included: the path of the instance's signing key, which must never
  # be here. A throwaway key of this pod at that path keeps the worker's builds from
  # failing on a missing file; what it signs is re-signed by the main daemon before it
  # leaves the instance (results-home, copy-closure --from).
  local key=${TRAMPOLINE_SIGNING_KEY:-}
  if [ -n "$key" ] && [ ! -e "$key" ]; then
    mkdir -p "$(dirname "$key")"
    (umask 077 && nix-store --generate-binary-cache-key "trampoline-worker-$(cat /proc/sys/kernel/hostname)-1" "$key" "$key.pub")
  fi
  # Then serve the store as the main daemon does (below), with this config.
  NIX_CONF_DIR=$conf_dir
}

# --- sshd + idle check ------------------------------------------------------------------
# Builds in progress: sessions are `nix-daemon --stdio` processes (the forced command) in
# this container. A scan of /proc without forking (comm never changes under us).
sessions() {
  local n=0 comm f
  for f in /proc/[0-9]*/comm; do
    read -r comm < "$f" 2>/dev/null || continue
    [ "$comm" = nix-daemon ] && n=$((n + 1))
  done
  echo "$n"
}

worker_sshd() {
  local secret=${TRAMPOLINE_FARM_SECRET_DIR:-/etc/trampoline/farm}
  local socket=${TRAMPOLINE_DAEMON_SOCKET:-/nix/var/nix/daemon-socket/socket}
  local timeout=${TRAMPOLINE_IDLE_TIMEOUT:-1800} interval=${TRAMPOLINE_MONITOR_INTERVAL:-10}
  local wait=${TRAMPOLINE_DAEMON_WAIT:-600} dir=$RUN/sshd
  export NIX_REMOTE=daemon
  [[ $timeout =~ ^[0-9]+$ ]] || die "TRAMPOLINE_IDLE_TIMEOUT must be whole seconds, got '$timeout'"
  if [ -e "$RUN/shutdown" ]; then
    head -c 900 "$RUN/shutdown" > "$TERMINATION_LOG" 2>/dev/null || true
    log "stopped: $(head -c 900 "$RUN/shutdown")"
    exit 0
  fi
  local deadline=$((SECONDS + wait))
  until [ -S "$socket" ] && nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "the worker's nix-daemon did not answer on $socket within ${wait}s (see the nix-daemon container's log)"
    sleep 1
  done
  for f in ssh_host_ed25519_key authorized_keys; do
    [ -s "$secret/$f" ] || die "missing $secret/$f: the farm Secret (trampoline-<instance>-farm) must hold it; run trampoline setup"
  done
  umask 077
  rm -rf "$dir"
  mkdir -m 0700 "$dir"
  cp "$secret/ssh_host_ed25519_key" "$secret/authorized_keys" "$dir/"
  chmod 0600 "$dir"/*
  # Generated here, not shipped in the scripts ConfigMap: the same names as the user
  # container's sshd_config would be confusing, and only this role needs it.
  cat > "$dir/sshd_config" <<EOF
Port 2222
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers trampoline
PermitRootLogin no
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
HostbasedAuthentication no
UsePAM no
StrictModes no
LoginGraceTime 20
MaxStartups 50:30:200
MaxSessions 64
# Whatever the client asks, a session is the worker's store over stdin/stdout (the key's
# authorized_keys line says the same, with restrict).
ForceCommand nix-daemon --stdio
PermitTTY no
AllowTcpForwarding no
AllowStreamLocalForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
PermitUserEnvironment no
SetEnv NIX_REMOTE=daemon PATH=/nix/var/nix/profiles/default/bin:/usr/local/bin:/usr/bin:/bin
ClientAliveInterval 10
ClientAliveCountMax 3
LogLevel INFO
EOF
  umask 022
  local sshd_bin
  sshd_bin=$(command -v sshd || echo /usr/sbin/sshd)
  "$sshd_bin" -t -f "$dir/sshd_config" || die "sshd rejected the worker's sshd_config"
  "$sshd_bin" -D -e -f "$dir/sshd_config" &
  local sshd=$!
  trap 'kill -TERM "$sshd" 2>/dev/null; exit 0' TERM INT
  log "sshd $sshd listening on 2222; idle timeout ${timeout}s"

  # Idle: no build session for the instance's idle timeout (0 = never). The main pod's
  # own monitor counts the client build (it runs in the user container), so a worker
  # never stops an instance; it only stops itself when nothing has used it.
  local last=$SECONDS busy
  while kill -0 "$sshd" 2>/dev/null; do
    busy=$(sessions)
    [ "$busy" -gt 0 ] && last=$SECONDS
    printf '{"sessions":%s,"idleSeconds":%s,"timeout":%s}\n' "$busy" $((SECONDS - last)) "$timeout" > "$RUN/worker.json.new" && mv -f "$RUN/worker.json.new" "$RUN/worker.json"
    if [ "$timeout" -gt 0 ] && [ $((SECONDS - last)) -ge "$timeout" ]; then
      local reason="idle: no build for ${timeout}s"
      printf '%s\n' "$reason" > "$RUN/shutdown"
      printf '%s\n' "$reason" > "$TERMINATION_LOG" 2>/dev/null || true
      kill -TERM "$sshd" 2>/dev/null || true
      wait "$sshd" 2>/dev/null || true
      log "stopped: $reason"
      exit 0
    fi
    sleep "$interval" & wait $! || true
  done
  set +e
  wait "$sshd"
  die "sshd exited with status $?"
}

case ${1:-} in
  '') ;;
  worker-init) worker_init; exit 0 ;;
  worker-sshd) worker_sshd; exit 0 ;;
  worker-daemon) worker_daemon ;;
  *) echo "usage: entrypoint-daemon.sh [worker-init|worker-daemon|worker-sshd]" >&2; exit 2 ;;
esac

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

# Build-farm workers (setup --workers N) as remote builders. The machines file and the ssh
# config it names hosts in live in a daemon-only emptyDir that setup rewrites (by exec, as
# root) whenever workers come or go; Nix rereads the machines file for every build, so no
# restart. The file never lives where the user container could write it: a builder entry
# is a trusted setting (outputs of a remote build are taken as they come). Entries name
# workers by pod name; the ssh config maps names to pod IPs and bounds every connection,
# so a worker that dies mid-build fails that build within seconds instead of hanging.
farm=()
FARM_MACHINES=${TRAMPOLINE_FARM_MACHINES:-}
if [ -n "$FARM_MACHINES" ]; then
  farm_dir=$(dirname "$FARM_MACHINES")
  mkdir -p "$farm_dir"
  chmod 0700 "$farm_dir"
  [ -e "$farm_dir/ssh_config" ] || : > "$farm_dir/ssh_config"
  # A derivation all workers are busy for is postponed, and Nix looks at postponed ones
  # again only every build-poll-interval (5 s by default): 1 s keeps free slots busy.
  farm=(--option builders "@$FARM_MACHINES" --option builders-use-substitutes true --option build-poll-interval 1)
  export NIX_SSHOPTS="-F $farm_dir/ssh_config"
fi

# Workers that went away (idle stop, eviction, a kill) stay in what setup wrote until the
# next setup; every build would first wait on them. So setup writes the full list to
# machines.all, and this loop keeps `machines` to the workers whose sshd accepts a
# connection (bash's /dev/tcp: no tools the image lacks), every FARM_CHECK seconds.
FARM_CHECK=${TRAMPOLINE_FARM_CHECK:-20}
farm_ip() {
  local host='' key value
  while read -r key value; do
    case $key in
      Host) host=$value ;;
      HostName) [ "$host" = "$1" ] && { echo "$value"; return 0; } ;;
    esac
  done <<< "$2"
}
farm_prune() {
  local all=$farm_dir/machines.all live='' dead='' line host ip current list config
  [ -f "$all" ] || return 0
  # setup rewrites these while we probe: work on one reading of both, and write nothing
  # if either changed meanwhile (the next round sees setup's files whole).
  list=$(cat "$all") config=$(cat "$farm_dir/ssh_config")
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    host=${line%% *}
    host=${host##*@}
    ip=$(farm_ip "$host" "$config" || true)
    if [ -n "$ip" ] && timeout 2 bash -c ': < "/dev/tcp/$1/2222"' _ "$ip" 2>/dev/null; then live+="$line"$'\n'; else dead+=" $host"; fi
  done <<< "$list"
  current=$(cat "$FARM_MACHINES" 2>/dev/null || true)
  [ "${live%$'\n'}" = "$current" ] && return 0
  [ "$list" = "$(cat "$all")" ] && [ "$config" = "$(cat "$farm_dir/ssh_config")" ] || return 0
  (umask 077 && printf '%s' "$live" > "$FARM_MACHINES.new" && mv -f "$FARM_MACHINES.new" "$FARM_MACHINES")
  log "builders: $(printf '%s' "$live" | grep -c . || true) worker(s) answer${dead:+; not answering:$dead}"
}

nix-daemon ${sign[@]+"${sign[@]}"} ${caches[@]+"${caches[@]}"} ${farm[@]+"${farm[@]}"} &
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
  if [ -n "$FARM_MACHINES" ] && [ $((SECONDS - ${farm_checked:-0})) -ge "$FARM_CHECK" ]; then
    farm_checked=$SECONDS
    # In the background: a worker that does not answer must not delay a shutdown.
    if [ -z "${farm_pid:-}" ] || ! kill -0 "$farm_pid" 2>/dev/null; then
      farm_prune &
      farm_pid=$!
    fi
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
