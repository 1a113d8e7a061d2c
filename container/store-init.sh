#!/usr/bin/env bash
# Init container `store-init` (root, not privileged; CHOWN, DAC_OVERRIDE, FOWNER, FSETID):
# prepare the PVC before nix-daemon and user mount it.
#  - First run: copy the image's /nix (store + database) onto the volume at /mnt/nix.
#    The copy goes to a staging dir and the marker is written last, so a pod killed
#    mid-copy starts over cleanly next time. Nothing we did not create is ever deleted.
#  - Later runs (idempotent): add store paths of a newer image that the volume lacks (a
#    Nix-built image runs its nix and sshd from /nix/store, which is now the volume) and
#    register them; refresh the image's GC roots.
#  - Every run: directories and ownership for the user (UID/GID 1000) on the volume.
set -euo pipefail

IMAGE_NIX=${TRAMPOLINE_IMAGE_NIX:-/nix}
VOL=${TRAMPOLINE_STORE_VOLUME:-/mnt/nix}
WORKSPACE=${TRAMPOLINE_WORKSPACE_VOLUME:-/mnt/workspace}
HOMEDIR=${TRAMPOLINE_HOME_VOLUME:-/mnt/home}
USER_ID=1000 GROUP_ID=1000
MARKER=$VOL/.trampoline-initialised
STAGING=$VOL/.trampoline-staging
export PATH=/nix/var/nix/profiles/default/bin:$PATH
unset NIX_REMOTE  # nix-store below works on the volume's database directly

log() { echo "store-init: $*" >&2; }
die() { log "$*"; exit 1; }
[ -d "$IMAGE_NIX/store" ] || die "the image has no $IMAGE_NIX/store"
[ -d "$VOL" ] || die "the store volume is not mounted at $VOL"

# Paths in the image's store (not Nix's .links dedup directory).
image_paths() { find "$IMAGE_NIX/store" -mindepth 1 -maxdepth 1 ! -name .links ! -name '*.lock' -printf '%f\n'; }

if [ ! -e "$MARKER" ]; then
  # Empty, or what an interrupted first run left: only names we create may be there.
  ours=" .trampoline-staging lost+found $(find "$IMAGE_NIX" -mindepth 1 -maxdepth 1 -printf '%f ') "
  for entry in "$VOL"/* "$VOL"/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    [[ $ours == *" ${entry##*/} "* ]] || die "$VOL holds $entry but no $MARKER: not a store this script made; refusing to touch it (empty the volume or fix it by hand)"
  done
  log "initialising the store volume from the image's $IMAGE_NIX ($(image_paths | wc -l) store paths)"
  for entry in "$VOL"/* "$VOL"/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    [ "${entry##*/}" = lost+found ] && continue
    chmod -R u+w "$entry" 2>/dev/null || true
    rm -rf "$entry"
  done
  cp -a "$IMAGE_NIX/." "$STAGING/"
  # Each rename is atomic; until the marker exists a rerun redoes everything.
  for entry in "$STAGING"/* "$STAGING"/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    mv -T "$entry" "$VOL/${entry##*/}"
  done
  rmdir "$STAGING"
  sync -f "$VOL" 2>/dev/null || true
  date -u +%Y-%m-%dT%H:%M:%SZ > "$MARKER"
  log "store volume initialised"
else
  # Newer image: its store paths the volume lacks, each copied whole then renamed in.
  missing=0
  find "$VOL/store" -mindepth 1 -maxdepth 1 -name '.trampoline-tmp-*' -exec rm -rf {} + 2>/dev/null || true
  while read -r name; do
    [ -e "$VOL/store/$name" ] || [ -L "$VOL/store/$name" ] && continue
    cp -a "$IMAGE_NIX/store/$name" "$VOL/store/.trampoline-tmp-$name"
    mv -T "$VOL/store/.trampoline-tmp-$name" "$VOL/store/$name"
    missing=$((missing + 1))
  done < <(image_paths)
  # Register the image's paths in the volume's database (a no-op for known ones).
  if [ -n "$(image_paths | head -n 1)" ] && [ -e "$IMAGE_NIX/var/nix/db/db.sqlite" ]; then
    command -v nix-store >/dev/null || die "nix-store not found to register the image's store paths"
    NIX_STATE_DIR=$IMAGE_NIX/var/nix nix-store --dump-db | NIX_STATE_DIR=$VOL/var/nix nix-store --load-db
  fi
  log "store volume already initialised ($(cat "$MARKER")); added $missing store path(s) from the image"
fi

# The image's own GC roots (a Nix-built image roots its closure) and default profile
# (first on the scripts' PATH) follow the image.
if [ -d "$IMAGE_NIX/var/nix/gcroots" ]; then
  for root in "$IMAGE_NIX"/var/nix/gcroots/*; do
    [ -L "$root" ] && ln -sfn "$(readlink "$root")" "$VOL/var/nix/gcroots/${root##*/}"
  done
fi
if [ -L "$IMAGE_NIX/var/nix/profiles/default" ]; then
  mkdir -p "$VOL/var/nix/profiles"
  # ln -sfn, not cp: cp would follow the volume's existing link into the store.
  ln -sfn "$(readlink "$IMAGE_NIX/var/nix/profiles/default")" "$VOL/var/nix/profiles/default"
fi

# Layout and ownership, every run (cheap, and repairs a hand-edited volume). The kubelet
# creates a missing subPath directory as 0750 root:root: UID 1000 must traverse /nix.
chown 0:0 "$VOL"
chmod 0755 "$VOL"
install -d -m 0755 -o 0 -g 0 "$VOL/var" "$VOL/var/nix" "$VOL/var/log" "$VOL/var/log/nix"
nixbld=$(grep -m 1 '^nixbld:' /etc/group | cut -d: -f3 || true)
chown "0:${nixbld:-0}" "$VOL/store"
chmod 1775 "$VOL/store"
install -d -m 0755 -o 0 -g 0 "$VOL/var/nix/daemon-socket" "$VOL/var/nix/db" "$VOL/var/nix/gcroots" "$VOL/var/nix/profiles"
install -d -m 1777 "$VOL/var/nix/gcroots/per-user" "$VOL/var/nix/profiles/per-user"
install -d -m 0755 -o "$USER_ID" -g "$GROUP_ID" "$VOL/var/nix/gcroots/trampoline" \
  "$VOL/var/nix/gcroots/per-user/trampoline" "$VOL/var/nix/profiles/per-user/trampoline"
for dir in "$WORKSPACE" "$HOMEDIR"; do
  [ -d "$dir" ] || die "$dir is not mounted"
done
# A fresh home gets the image's skeleton dotfiles; existing files are never overwritten.
# Before the chown/chmod below: `cp -a skel/. home/` also copies skel's own mode and owner.
if [ -d /etc/skel ] && [ ! -e "$HOMEDIR/.profile" ]; then
  cp -a -n /etc/skel/. "$HOMEDIR/"
  (cd /etc/skel && find . -mindepth 1 -maxdepth 1 -printf '%f\0') | (cd "$HOMEDIR" && xargs -0 -r chown -R "$USER_ID:$GROUP_ID")
fi
chown "$USER_ID:$GROUP_ID" "$WORKSPACE" "$HOMEDIR"
chmod 0755 "$WORKSPACE"
chmod 0700 "$HOMEDIR"
install -d -m 0755 -o "$USER_ID" -g "$GROUP_ID" "$WORKSPACE/.trees"
log "ready"
