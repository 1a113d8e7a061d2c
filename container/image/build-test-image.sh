#!/usr/bin/env bash
# Build the offline test image `localhost/trampoline:test` from Debian packages (no
# registry, no Docker): debootstrap a minimal bookworm root with Nix (Debian's nix-bin,
# living in /usr), sshd and the tools the in-pod scripts use, turn it into an OCI image
# with umoci and export it as an OCI archive with skopeo.
#
# Usage: build-test-image.sh [--no-claude] [--force]
#   --no-claude  leave out the optional Claude Code layer (Node 24 + @anthropic-ai/claude-code
#                from the npm registry, ~420 MB unpacked); also TRAMPOLINE_IMAGE_CLAUDE=0
#   --force      rebuild even when a cached archive exists
# Prints the archive path on stdout (progress goes to stderr). Results are cached under
# ${TRAMPOLINE_CACHE:-/var/cache/trampoline}/images/, keyed by a hash of this script and
# its settings. Import with e.g. `ctr -n k8s.io images import <archive>`: the archive's
# index names the image `localhost/trampoline:test`. Needs root.
set -euo pipefail

IMAGE_REF=${TRAMPOLINE_IMAGE_REF:-localhost/trampoline:test}
SUITE=bookworm
MIRROR=${TRAMPOLINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
PACKAGES=nix-bin,openssh-server,git,tar,coreutils,util-linux,procps,busybox-static,ca-certificates,less,xz-utils
# Pinned so the cache key names what is inside; override to move on.
NODE_VERSION=${TRAMPOLINE_NODE_VERSION:-24.21.0}
CLAUDE_VERSION=${TRAMPOLINE_CLAUDE_VERSION:-2.1.330}
CLAUDE=${TRAMPOLINE_IMAGE_CLAUDE:-1}
FORCE=0
for arg in "$@"; do
  case $arg in
    --no-claude) CLAUDE=0 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build-test-image: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "build-test-image: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root (debootstrap, chroot, ownership in layers)"; exit 1; }
for tool in debootstrap umoci skopeo sha256sum; do
  command -v "$tool" >/dev/null || { log "missing $tool (apt-get install debootstrap umoci skopeo)"; exit 1; }
done
if [ "$CLAUDE" = 1 ]; then command -v npm >/dev/null || { log "npm is needed for the Claude layer (or pass --no-claude)"; exit 1; }; fi

ARCH=$(dpkg --print-architecture)
KEY=$( { cat "$0"; echo "$IMAGE_REF $SUITE $MIRROR $PACKAGES $ARCH claude=$CLAUDE $NODE_VERSION $CLAUDE_VERSION"; } | sha256sum | cut -c1-16)
CACHE=${TRAMPOLINE_CACHE:-/var/cache/trampoline}/images
NAME=trampoline-test-$ARCH-$KEY$([ "$CLAUDE" = 1 ] || echo -noclaude)
OUT=$CACHE/$NAME.oci.tar
if [ "$FORCE" = 0 ] && [ -s "$OUT" ]; then
  log "cached: $OUT"
  echo "$OUT"
  exit 0
fi

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.build-$KEY.XXXXXX")
cleanup() {
  # A failed apt step may leave /proc mounted inside the root: never rm through a mount.
  umount -l "$WORK/bundle/rootfs/proc" 2>/dev/null || true
  if grep -q " $WORK/" /proc/self/mounts; then log "leaving $WORK (still has mounts)"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
started=$SECONDS

log "creating an empty $ARCH image layout"
umoci init --layout "$WORK/oci"
umoci new --image "$WORK/oci:test"
umoci unpack --image "$WORK/oci:test" "$WORK/bundle" >&2
ROOT=$WORK/bundle/rootfs

log "debootstrap $SUITE (minbase)"
debootstrap --variant=minbase --arch="$ARCH" "$SUITE" "$ROOT" "$MIRROR" >&2
# debootstrap's own --include resolver fails on nix-bin's perl dependencies: use apt.
log "apt-get install ${PACKAGES//,/ }"
# debootstrap made the device nodes; apt's maintainer scripts want /proc.
mount -t proc proc "$ROOT/proc"
printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"  # start no services
chmod +x "$ROOT/usr/sbin/policy-rc.d"
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get -q update >&2
# shellcheck disable=SC2086
chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get -q -y install --no-install-recommends ${PACKAGES//,/ } >&2
chroot "$ROOT" apt-get clean
rm -f "$ROOT/usr/sbin/policy-rc.d"
umount "$ROOT/proc"

log "configuring users, /nix and sshd"
# As in the official nixos/nix image, /bin/sh is bash (the pod's passwd gives /bin/sh as
# the user's shell, the one path both images have).
ln -sfn bash "$ROOT/bin/sh"
# Nix's build users: nix-daemon (root) runs each build as one of these.
chroot "$ROOT" groupadd -r -g 30000 nixbld
for i in $(seq 1 32); do
  chroot "$ROOT" useradd -r -u $((30000 + i)) -g nixbld -G nixbld -M -d /var/empty \
    -s /usr/sbin/nologin -c "Nix build user $i" "nixbld$i"
done
# The pod's user: UID/GID 1000, home on the PVC. '*' = no password but not locked,
# so sshd accepts its public keys.
chroot "$ROOT" groupadd -g 1000 trampoline
chroot "$ROOT" useradd -u 1000 -g 1000 -m -d /home/trampoline -s /bin/bash -c trampoline trampoline
chroot "$ROOT" usermod -p '*' trampoline
# The layout Debian's nix (in /usr) expects; store-init copies it onto the PVC.
install -d -m 1775 -g 30000 "$ROOT/nix/store"
install -d -m 0755 "$ROOT/nix/var/nix/db" "$ROOT/nix/var/nix/temproots" "$ROOT/nix/var/nix/userpool" \
  "$ROOT/nix/var/nix/daemon-socket" "$ROOT/nix/var/nix/gcroots" "$ROOT/nix/var/log/nix/drvs" \
  "$ROOT/nix/var/nix/profiles" "$ROOT/etc/nix"
install -d -m 1777 "$ROOT/nix/var/nix/gcroots/per-user" "$ROOT/nix/var/nix/profiles/per-user"
install -d -m 0755 -o 1000 -g 1000 "$ROOT/workspace" "$ROOT/nix/var/nix/gcroots/trampoline"
install -d -m 0755 "$ROOT/opt/trampoline" "$ROOT/run/trampoline" "$ROOT/etc/trampoline/ssh"
# Host keys are never generated in the image or the pod: they come from the Secret, so
# the client can pin them.
rm -f "$ROOT"/etc/ssh/ssh_host_*
# sshd's privilege-separation directory (unused by the non-root sshd, checked anyway).
install -d -m 0755 "$ROOT/run/sshd"
test -x "$ROOT/bin/busybox" || { log "static busybox missing at /bin/busybox"; exit 1; }
# The same binary alone in a real directory: `builtins.path { path = /opt/busybox; }`
# imports it so that it runs as .../busybox (busybox dispatches on its own name).
install -D -m 0755 "$ROOT/bin/busybox" "$ROOT/opt/busybox/busybox"
echo trampoline > "$ROOT/etc/hostname"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log \
  "$ROOT"/var/cache/debconf/*-old

log "packing the base layer"
umoci repack --image "$WORK/oci:test" "$WORK/bundle" >&2
rm -rf "$WORK/bundle"

if [ "$CLAUDE" = 1 ]; then
  # A separate layer: Node (the npm `node` package ships the binary for this arch) and
  # Claude Code (its npm package pulls the native binary for this platform).
  log "installing node@$NODE_VERSION and @anthropic-ai/claude-code@$CLAUDE_VERSION (layer 2)"
  npm install -g --no-fund --no-audit --prefix "$WORK/claude" \
    "node@$NODE_VERSION" "@anthropic-ai/claude-code@$CLAUDE_VERSION" >&2
  "$WORK/claude/bin/node" --version >/dev/null
  rm -rf "$WORK/claude/etc"
  chown -R 0:0 "$WORK/claude"
  umoci insert --image "$WORK/oci:test" "$WORK/claude/lib" /usr/local/lib >&2
  umoci insert --image "$WORK/oci:test" "$WORK/claude/bin" /usr/local/bin >&2
fi

umoci config --image "$WORK/oci:test" --os linux --architecture "$ARCH" \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.cmd /bin/bash --config.workingdir / \
  --config.label org.opencontainers.image.title=trampoline-test >&2

log "exporting $IMAGE_REF"
skopeo --insecure-policy copy --quiet "oci:$WORK/oci:test" "oci-archive:$WORK/out.tar:$IMAGE_REF" >&2
mv "$WORK/out.tar" "$OUT"
# Older builds of the same flavour (with or without Claude) are dead weight.
for old in "$CACHE"/trampoline-test-"$ARCH"-*.oci.tar; do
  [ "$old" != "$OUT" ] && [ -e "$old" ] || continue
  case $old in *-noclaude.oci.tar) [ "$CLAUDE" = 0 ] && rm -f "$old" ;; *) [ "$CLAUDE" = 1 ] && rm -f "$old" ;; esac
done
log "done in $((SECONDS - started))s: $OUT ($(du -h "$OUT" | cut -f1))"
echo "$OUT"
