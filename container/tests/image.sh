#!/usr/bin/env bash
# container/tests/image.sh [ARCHIVE]: the offline test image itself, without a cluster.
# Unpacks the OCI archive (built by image/build-test-image.sh when none is given) and
# runs the pod's containers from the scripts inside its root filesystem (chroot + a PID
# namespace each, the test's own mount and network namespaces): store-init, nix-daemon,
# a build by UID 1000, sshd with pinned keys, nix copy over ssh-ng, Claude Code's CLI,
# and an idle shutdown. Prints PASS/FAIL lines and `N passed, N failed`. Root only.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONTAINER=$(dirname "$HERE")

if [ -z "${TRAMPOLINE_ITEST_INNER:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "FAIL container/tests/image.sh must run as root"; echo "0 passed, 1 failed"; exit 1; }
  archive=${1:-$("$CONTAINER/image/build-test-image.sh")}
  W=$(mktemp -d /tmp/trampoline-itest.XXXXXX)
  chmod 0755 "$W"
  skopeo --insecure-policy copy --quiet "oci-archive:$archive" "oci:$W/oci:img"
  umoci unpack --image "$W/oci:img" "$W/bundle" >/dev/null
  set +e
  TRAMPOLINE_ITEST_INNER=1 W=$W timeout --kill-after=30 900 unshare --mount --net --propagation private -- "$0"
  rc=$?
  set -e
  [ "$rc" != 124 ] || { echo "FAIL the image test did not finish within 15 minutes"; echo "0 passed, 1 failed"; }
  if [ -n "${TRAMPOLINE_CTEST_KEEP:-}" ]; then echo "scratch kept in $W" >&2; else rm -rf "$W"; fi
  exit "$rc"
fi

# --- inside the test's namespaces ---------------------------------------------------
T=$W
source "$HERE/lib.sh"
R=$W/bundle/rootfs
mkdir -p "$T/logs" "$T/vol/nix" "$T/vol/workspace" "$T/vol/home"
DAEMON='' USER_CTR=''
cleanup() { stop_container "$USER_CTR"; stop_container "$DAEMON"; }
trap cleanup EXIT
ip link set lo up

# The pod's mounts inside the image's root, which must itself be a mount (Nix's sandbox
# makes / private, as it can in a real container's root).
mount --bind "$R" "$R"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0777 tmpfs "$R/run/trampoline"
mount -t tmpfs -o mode=0755 tmpfs "$R/opt/trampoline"
for f in "$CONTAINER"/*.sh "$CONTAINER/nix.conf" "$CONTAINER/sshd_config"; do install -m 0555 "$f" "$R/opt/trampoline/"; done
mkdir -p "$R/mnt/nix" "$R/mnt/workspace" "$R/mnt/home" "$R/etc/trampoline/ssh"
mount --bind "$T/vol/nix" "$R/mnt/nix"
mount --bind "$T/vol/workspace" "$R/mnt/workspace"
mount --bind "$T/vol/home" "$R/mnt/home"
mkdir -p "$T/keys"
ssh-keygen -q -t ed25519 -N '' -f "$T/keys/host"
ssh-keygen -q -t ed25519 -N '' -f "$T/keys/client"
install -m 0444 "$T/keys/host" "$R/etc/trampoline/ssh/ssh_host_ed25519_key"
install -m 0444 "$T/keys/host.pub" "$R/etc/trampoline/ssh/ssh_host_ed25519_key.pub"
install -m 0444 "$T/keys/client.pub" "$R/etc/trampoline/ssh/authorized_keys"
echo "[127.0.0.1]:2222 $(cut -d' ' -f1,2 "$T/keys/host.pub")" > "$T/known_hosts"
install -m 0644 "$HERE/hello.nix" "$R/tmp/hello.nix"
CENV=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin NIX_CONF_DIR=/opt/trampoline)
UENV=("${CENV[@]}" HOME=/home/trampoline USER=trampoline NIX_REMOTE=daemon)
in_image() { chroot "$R" "$@"; }
as_user() { chroot "$R" setpriv --reuid=1000 --regid=1000 --clear-groups --bounding-set=-all --no-new-privs "${UENV[@]}" "$@"; }

t_image_contents() {
  in_image id trampoline | grep -qx 'uid=1000(trampoline) gid=1000(trampoline) groups=1000(trampoline)'
  in_image getent group nixbld | grep -q nixbld1
  [ "$(stat -c '%a %G' "$R/nix/store")" = "1775 nixbld" ]
  ! ls "$R"/etc/ssh/ssh_host_* 2>/dev/null
  in_image /bin/busybox true && in_image /opt/busybox/busybox true
  [ -f "$R/opt/busybox/busybox" ] && [ ! -L "$R/opt/busybox/busybox" ]
  for tool in bash tar flock nix nix-daemon nix-store sshd git ps find; do in_image sh -c "command -v $tool" >/dev/null || { echo "missing $tool"; return 1; }; done
  [ "$(stat -c %u "$R/home/trampoline")" = 1000 ]
}
check "image: user trampoline 1000:1000, nixbld users, /nix layout, static busybox, tools, no host keys" t_image_contents

t_claude() {
  [ -x "$R/usr/local/bin/claude" ] || { echo "no Claude layer (built with --no-claude?)"; return 0; }
  as_user node --version | grep -Eq '^v(2[2-9]|[3-9][0-9])\.'
  as_user claude --version | grep -q 'Claude Code'
}
check "image: Node >= 22 and the Claude Code CLI run as the user" t_claude

t_store_init() {
  in_image setpriv --bounding-set=-all,+chown,+dac_override,+fowner,+fsetid --inh-caps=-all "${CENV[@]}" /opt/trampoline/store-init.sh
  [ -s "$T/vol/nix/.trampoline-initialised" ] && [ "$(stat -c %u "$T/vol/workspace/.trees")" = 1000 ]
}
check "image: store-init initialises the volume" t_store_init

# Now the containers' view: the volume at /nix, /workspace, /home/trampoline.
mount --bind "$T/vol/nix" "$R/nix"
mount --bind "$T/vol/workspace" "$R/workspace"
mount --bind "$T/vol/home" "$R/home/trampoline"
install -m 0644 /dev/null "$T/term-daemon"
install -m 0644 -o 1000 -g 1000 /dev/null "$R/run/trampoline-term-user"
unshare --pid --fork --mount-proc="$R/proc" chroot "$R" "${CENV[@]}" TRAMPOLINE_TERMINATION_LOG=/dev/stderr \
  /opt/trampoline/entrypoint-daemon.sh >"$T/logs/daemon.log" 2>&1 &
DAEMON=$!
t_daemon() { poll 60 in_image "${CENV[@]}" nix --extra-experimental-features nix-command store ping --store daemon || { cat "$T/logs/daemon.log"; return 1; }; }
check "image: entrypoint-daemon.sh runs Debian's nix-daemon; the readiness probe answers" t_daemon

unshare --pid --fork --mount-proc="$R/proc" chroot "$R" setpriv --reuid=1000 --regid=1000 --clear-groups \
  --bounding-set=-all --no-new-privs "${UENV[@]}" TRAMPOLINE_IDLE_TIMEOUT=3 TRAMPOLINE_MONITOR_INTERVAL=1 \
  TRAMPOLINE_TERMINATION_LOG=/run/trampoline-term-user /opt/trampoline/entrypoint-user.sh >"$T/logs/user.log" 2>&1 &
USER_CTR=$!
t_sshd() { poll 90 sshd_ready || { cat "$T/logs/user.log"; return 1; }; }
check "image: entrypoint-user.sh starts the image's sshd as UID 1000 on 2222" t_sshd

# A session held open through the build keeps the 3s-timeout pod up (until killed below).
(sleep 600 | pod_ssh "$T/keys/client" 'cat >/dev/null') >"$T/logs/hold" 2>&1 &
HOLD=$!
t_build() {
  local out
  out=$(as_user nix-build /tmp/hello.nix --out-link /nix/var/nix/gcroots/trampoline/hello)
  [ "$(as_user "$out/bin/hello")" = "Hello from trampoline" ]
  [ "$(cat "$R$out/build-dir")" = /build ]
}
check "image: UID 1000 builds hello.nix through the daemon (sandboxed, offline)" t_build

t_ssh() {
  [ "$(pod_ssh "$T/keys/client" 'echo $(id -u) $NIX_REMOTE; nix-store --check-validity /nix/var/nix/gcroots/trampoline/hello && echo valid')" = "1000 daemon
valid" ]
  mkdir -p "$T/cstore" "$T/payload" "$T/client-conf"
  printf 'experimental-features = nix-command\nsandbox = false\nsubstituters =\n' > "$T/client-conf/nix.conf"
  echo "over ssh-ng $RANDOM" > "$T/payload/f"
  local path
  path=$(NIX_CONF_DIR="$T/client-conf" nix-store --store "$T/cstore" --add "$T/payload")
  NIX_CONF_DIR="$T/client-conf" NIX_SSHOPTS="-i $T/keys/client -o IdentitiesOnly=yes -o UserKnownHostsFile=$T/known_hosts -o StrictHostKeyChecking=yes -o BatchMode=yes -p 2222" \
    nix copy --no-check-sigs --from "$T/cstore" --to ssh-ng://trampoline@127.0.0.1 "$path"
  as_user nix-store --check-validity "$path"
}
check "image: ssh with pinned keys; nix copy --to ssh-ng:// reaches the image's nix-daemon" t_ssh

kill_tree "$HOLD"; wait "$HOLD" 2>/dev/null || true
poll 60 not running "$USER_CTR" || true
set +e
if running "$USER_CTR"; then USER_STATUS=running; else wait "$USER_CTR"; USER_STATUS=$?; fi
poll 120 not running "$DAEMON" || true
if running "$DAEMON"; then DAEMON_STATUS=running; else wait "$DAEMON"; DAEMON_STATUS=$?; fi
set -e
t_idle() {
  [ "$USER_STATUS" = 0 ] && [ "$DAEMON_STATUS" = 0 ] || { echo "user $USER_STATUS, daemon $DAEMON_STATUS"; tail "$T/logs/user.log" "$T/logs/daemon.log"; return 1; }
  grep -q '^idle: no activity' "$R/run/trampoline-term-user"
  grep -q 'stopped: idle: ' "$T/logs/daemon.log"
}
check "image: idle with no session, both containers exit 0 with 'idle: <reason>'" t_idle

summary
