#!/usr/bin/env bash
# container/tests/run.sh: the in-pod scripts against real programs on this machine (as
# root): a real nix-daemon started by entrypoint-daemon.sh, a real non-root sshd started
# by entrypoint-user.sh, builds by UID 1000, store-init, push-receive, maintenance, the
# idle monitor and agent sessions (agent-session.sh with a fake claude). Everything
# happens in namespaces of the test's own (mount, network, PID), over tmpfs and bind
# mounts, so the host's /nix, /etc and network are untouched; traffic stays on the
# namespace's loopback. Prints PASS/FAIL lines and ends with
# `N passed, N failed`; exits non-zero on any failure.
#   TRAMPOLINE_CTEST_KEEP=1  keep the scratch directory (logs) for debugging
#   TRAMPOLINE_CTEST_ONLY="t-pod t-agent"  run only these suites (files container/tests/t-*.sh)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONTAINER=$(dirname "$HERE")

if [ -z "${TRAMPOLINE_CTEST_INNER:-}" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "FAIL container/tests/run.sh must run as root (namespaces, a real nix-daemon)"
    echo "0 passed, 1 failed"
    exit 1
  fi
  # tool -> Debian package; missing ones are installed (the registry is reachable here).
  missing=()
  for pair in strace:strace nix-daemon:nix-bin sshd:openssh-server ssh:openssh-client busybox:busybox-static \
    unshare:util-linux ip:iproute2 git:git python3:python3 kubectl:kubectl tmux:tmux; do
    command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
  done
  python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
  # json_field (test/lib.sh) runs on the repository's pinned node, else on the system's.
  [ -x "$CONTAINER/../node_modules/.bin/node" ] || command -v node >/dev/null || missing+=(nodejs)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing test dependencies: ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
      { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
  fi
  T=$(mktemp -d /tmp/trampoline-ctest.XXXXXX)
  chmod 0755 "$T"
  # Mount points that must exist on the host's root (left empty, removed afterwards by
  # the last run out). Runs at once share them: removing a directory that another mount
  # namespace mounts on detaches those mounts, so each run holds a shared lock, and the
  # directories some run created (listed in $created_list) go only when an exclusive lock
  # shows no other run is left.
  created_list=/tmp/trampoline-ctest.created
  exec {ctest_lock}>/tmp/trampoline-ctest.lock
  flock -s "$ctest_lock"
  for dir in /workspace /home/trampoline; do
    [ -e "$dir" ] || { mkdir -p "$dir" && echo "$dir" >>"$created_list"; }
  done
  set +e
  # The lock stays with this shell: a container the run leaves behind must not hold it
  # (the next run's shared lock would wait for it forever).
  TRAMPOLINE_CTEST_INNER=1 T=$T timeout --kill-after=30 1200 \
    unshare --mount --net --propagation private -- "$0" "$@" {ctest_lock}>&-
  rc=$?
  # Whatever the run left running (a container a failed test did not stop): every process
  # with this run's scratch dir in its environment; killing a container's PID 1 ends it all.
  for environ in /proc/[0-9]*/environ; do
    pid=${environ#/proc/} pid=${pid%/environ}
    grep -qsF -- "$T/" "$environ" && kill -KILL "$pid" 2>/dev/null
  done
  set -e
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "FAIL the container tests did not finish within 20 minutes"
    echo "0 passed, 1 failed"
  fi
  flock -u "$ctest_lock"
  if flock -n -x "$ctest_lock"; then
    if [ -f "$created_list" ]; then
      while read -r dir; do rmdir "$dir" 2>/dev/null || true; done <"$created_list"
      rm -f "$created_list"
    fi
  fi
  exec {ctest_lock}>&-
  if [ -n "${TRAMPOLINE_CTEST_KEEP:-}" ]; then echo "scratch kept in $T" >&2; else rm -rf "$T"; fi
  exit "$rc"
fi

# --- inside the test's mount + network namespace ------------------------------------
# shellcheck source=lib.sh
source "$HERE/lib.sh"
mkdir -p "$T/logs"
DAEMON='' USER_CTR=''
cleanup() {
  stop_container "$USER_CTR"
  stop_container "$DAEMON"
  for pid in $(jobs -p); do kill -KILL "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
started=$SECONDS

ip link set lo up
make_toolset
# The image's users: trampoline 1000:1000 (whatever the host has at 1000), nixbld.
mkdir -p "$T/etc-upper" "$T/etc-work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/etc-upper,workdir=$T/etc-work" /etc
sed -i -e '/^[^:]*:[^:]*:1000:/d' -e '/^trampoline:/d' /etc/passwd
sed -i -e '/^[^:]*:[^:]*:1000:/d' -e '/^trampoline:/d' /etc/group
echo 'trampoline:x:1000:1000:trampoline:/home/trampoline:/bin/bash' >> /etc/passwd
echo 'trampoline:x:1000:' >> /etc/group
# Debian's nix-bin creates no build users (nix-setup-systemd would); the images have
# nixbld (GID 30000) with nixbld1..N, so the namespace's /etc gets the same.
if ! getent group nixbld >/dev/null; then
  members=$(seq -s, -f 'nixbld%g' 1 8)
  echo "nixbld:x:30000:$members" >> /etc/group
  for i in $(seq 1 8); do
    echo "nixbld$i:x:$((30000 + i)):30000:Nix build user $i:/var/empty:/usr/sbin/nologin" >> /etc/passwd
  done
fi

# The ConfigMap at /opt/trampoline (mode 0555): exactly the files kustomization.yaml lists.
mount -t tmpfs -o mode=0755 tmpfs /opt
mkdir /opt/trampoline /opt/busybox
CONFIGMAP_FILES=$(python3 -c 'import sys,yaml; k=yaml.safe_load(open(sys.argv[1])); print(" ".join(f for g in k["configMapGenerator"] for f in g["files"]))' "$CONTAINER/kustomization.yaml")
for f in $CONFIGMAP_FILES; do install -m 0555 "$CONTAINER/$f" "/opt/trampoline/$f"; done
# Offline builds import the static busybox the images carry at /opt/busybox.
install -m 0755 /bin/busybox /opt/busybox/busybox
# The memory-backed emptyDir `run` (kubelet makes it world-writable).
mount -t tmpfs -o mode=0755 tmpfs /run
install -d -m 0777 /run/trampoline
install -d -m 0755 /run/sshd  # the image's (sshd checks it exists)
# The PVC's subPaths, and the Secret.
mkdir -p "$T/vol/nix" "$T/vol/workspace" "$T/vol/home" "$T/img"
mount -t tmpfs -o mode=0755 tmpfs /mnt
mkdir /mnt/nix /mnt/workspace /mnt/home
mount --bind "$T/vol/nix" /mnt/nix
mount --bind "$T/vol/workspace" /mnt/workspace
mount --bind "$T/vol/home" /mnt/home
mount --bind "$T/vol/workspace" /workspace
mount --bind "$T/vol/home" /home/trampoline
mkdir -p /etc/trampoline/ssh "$T/keys"
ssh-keygen -q -t ed25519 -N '' -C pod-host -f "$T/keys/host"
ssh-keygen -q -t ed25519 -N '' -C client -f "$T/keys/client"
ssh-keygen -q -t ed25519 -N '' -C stranger -f "$T/keys/other"
ssh-keygen -q -t ed25519 -N '' -C impostor -f "$T/keys/other-host"
install -m 0444 "$T/keys/host" /etc/trampoline/ssh/ssh_host_ed25519_key
install -m 0444 "$T/keys/host.pub" /etc/trampoline/ssh/ssh_host_ed25519_key.pub
install -m 0444 "$T/keys/client.pub" /etc/trampoline/ssh/authorized_keys
echo "[127.0.0.1]:2222 $(cut -d' ' -f1,2 "$T/keys/host.pub")" > "$T/known_hosts"
echo "[127.0.0.1]:2222 $(cut -d' ' -f1,2 "$T/keys/other-host.pub")" > "$T/known_hosts.wrong"
chmod 0600 "$T"/keys/*
cp "$HERE"/*.nix "$T/"
chmod 0644 "$T"/*.nix
# A Nix for the test's own client side (a separate store under $T, never /nix).
mkdir -p "$T/client-conf"
printf 'experimental-features = nix-command\nsandbox = false\nsubstituters =\n' > "$T/client-conf/nix.conf"
client_nix() { env -u NIX_REMOTE NIX_CONF_DIR="$T/client-conf" NIX_SSHOPTS="-F $T/ssh_config" "$@"; }
cat > "$T/ssh_config" <<EOF
Host pod
  HostName 127.0.0.1
  Port 2222
  User trampoline
  IdentityFile $T/keys/client
  IdentitiesOnly yes
  UserKnownHostsFile $T/known_hosts
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel ERROR
EOF

# The suites, the four base ones first (later ones may use the daemon and sshd they
# start), then any other t-*.sh. TRAMPOLINE_CTEST_ONLY="t-pod t-x" runs only those.
suites=(t-static t-store-init t-pod t-agent)
for file in "$HERE"/t-*.sh; do
  name=$(basename "$file" .sh)
  [[ " ${suites[*]} " == *" $name "* ]] || suites+=("$name")
done
for name in "${suites[@]}"; do
  [[ -z ${TRAMPOLINE_CTEST_ONLY:-} || " $TRAMPOLINE_CTEST_ONLY " == *" $name "* ]] || continue
  # shellcheck source=/dev/null
  source "$HERE/$name.sh"
done

echo "container tests took $((SECONDS - started))s" >&2
summary
