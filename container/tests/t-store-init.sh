# shellcheck shell=bash
# store-init.sh: first copy, idempotence, a pod killed mid-copy, a half-finished
# rename, foreign data, a newer image. Run with only the capabilities k8s-pod.yaml gives
# the init container. Sourced by run.sh; leaves /nix bound to the initialised volume.

# The "image's /nix": a store with a registered path of many files (slow enough to
# interrupt) and a GC root, like a Nix-built image; /nix is bound to it.
python3 - "$T/payload" <<'EOF'
import os, sys
root = sys.argv[1]
for d in range(60):
    os.makedirs(f"{root}/d{d}", exist_ok=True)
    for f in range(500):
        with open(f"{root}/d{d}/f{f}", "w") as fh:
            fh.write(f"payload {d} {f}\n" * 8)
EOF
# The kubelet creates a PVC's missing subPath directories as 0750 root:root.
chmod 0750 "$T/vol/nix" "$T/vol/workspace" "$T/vol/home"
IMG_P1=$(client_nix nix-store --store "$T/img" --add "$T/payload")
mkdir -p "$T/img/nix/var/nix/gcroots"
ln -sfn "$IMG_P1" "$T/img/nix/var/nix/gcroots/trampoline-image"
mkdir -p "$T/img/nix/var/nix/profiles"
ln -sfn "$IMG_P1" "$T/img/nix/var/nix/profiles/default"
chgrp nixbld "$T/img/nix/store" && chmod 1775 "$T/img/nix/store"
mount --bind "$T/img/nix" /nix

# store-init as the init container runs it: root with CHOWN, DAC_OVERRIDE, FOWNER, FSETID.
store_init() {
  setpriv --bounding-set=-all,+chown,+dac_override,+fowner,+fsetid --inh-caps=-all \
    env -i PATH="$TOOLSET" /opt/trampoline/store-init.sh
}
store_listing() { (cd "$1/store" && find . -path ./.links -prune -o -printf '%p %m %s %u:%g\n' | sort); }
use_volume() { umount /mnt/nix; mkdir -p "$1"; mount --bind "$1" /mnt/nix; }

t_first_init() {
  store_init
  [ -s /mnt/nix/.trampoline-initialised ]
  [ ! -e /mnt/nix/.trampoline-staging ]
  diff <(store_listing "$T/img/nix") <(store_listing /mnt/nix)
  [ -e "/mnt/nix/var/nix/db/db.sqlite" ]
  [ "$(readlink /mnt/nix/var/nix/gcroots/trampoline-image)" = "$IMG_P1" ]
  [ "$(stat -c '%a %U %G' /mnt/nix/store)" = "1775 root nixbld" ]
  [ "$(stat -c '%a %u:%g' /mnt/nix)" = "755 0:0" ]
  [ "$(stat -c '%a %u:%g' /mnt/nix/var/nix)" = "755 0:0" ]
  [ "$(stat -c '%a %u:%g' /mnt/nix/var/nix/gcroots/trampoline)" = "755 1000:1000" ]
  [ "$(stat -c '%a %u:%g' /mnt/nix/var/nix/daemon-socket)" = "755 0:0" ]
  [ "$(stat -c '%a' /mnt/nix/var/nix/gcroots/per-user)" = 1777 ]
  [ "$(stat -c '%a %u:%g' /mnt/workspace)" = "755 1000:1000" ]
  [ "$(stat -c '%a %u:%g' /mnt/workspace/.trees)" = "755 1000:1000" ]
  [ "$(stat -c '%a %u:%g' /mnt/home)" = "700 1000:1000" ]
  if [ -e /etc/skel/.profile ]; then [ "$(stat -c '%u' /mnt/home/.profile)" = 1000 ]; fi
}
check "store-init: first run copies the image's /nix (store, database, roots) and prepares dirs for UID 1000" t_first_init

t_idempotent() {
  local before after
  before=$(store_listing /mnt/nix; cat /mnt/nix/.trampoline-initialised)
  echo "user data" > /mnt/home/notes
  store_init 2>&1 | tee "$T/logs/store-init-2" >&2
  grep -q 'already initialised' "$T/logs/store-init-2"
  after=$(store_listing /mnt/nix; cat /mnt/nix/.trampoline-initialised)
  [ "$before" = "$after" ]
  [ "$(cat /mnt/home/notes)" = "user data" ]
}
check "store-init: a second run changes nothing and keeps the user's files" t_idempotent

t_interrupted() {
  use_volume "$T/vol-killed/nix"
  setsid bash -c "$(declare -f store_init); store_init" >"$T/logs/store-init-killed" 2>&1 &
  local pid=$! n=0
  # Kill the whole init (script and its cp) once the copy is under way.
  poll 60 [ -d /mnt/nix/.trampoline-staging/store ]
  while [ $n -lt 50 ] && [ "$(find /mnt/nix/.trampoline-staging -maxdepth 3 2>/dev/null | wc -l)" -lt 20 ]; do sleep 0.05; n=$((n + 1)); done
  kill -KILL -- "-$pid"
  wait "$pid" 2>/dev/null || true
  [ ! -e /mnt/nix/.trampoline-initialised ] || { echo "the copy finished before it could be interrupted"; return 1; }
  [ -d /mnt/nix/.trampoline-staging ]
  note "killed with $(find /mnt/nix/.trampoline-staging | wc -l) of $(find "$T/img/nix" | wc -l) entries copied"
  store_init
  [ -s /mnt/nix/.trampoline-initialised ]
  [ ! -e /mnt/nix/.trampoline-staging ]
  diff <(store_listing "$T/img/nix") <(store_listing /mnt/nix)
}
check "store-init: killed mid-copy (no marker), the next run starts over and completes" t_interrupted

t_half_renamed() {
  # What a kill between the renames leaves: store moved in, var still staged.
  use_volume "$T/vol-half/nix"
  mkdir -p /mnt/nix/.trampoline-staging
  cp -a "$T/img/nix/store" /mnt/nix/store
  cp -a "$T/img/nix/var" /mnt/nix/.trampoline-staging/var
  echo junk > /mnt/nix/store/leftover
  store_init
  [ -s /mnt/nix/.trampoline-initialised ] && [ -d /mnt/nix/var/nix/db ] && [ ! -e /mnt/nix/store/leftover ] || return 1
  diff <(store_listing "$T/img/nix") <(store_listing /mnt/nix)
}
check "store-init: a run killed between its renames is redone from scratch" t_half_renamed

t_foreign() {
  use_volume "$T/vol-foreign/nix"
  echo precious > /mnt/nix/somebody-elses-file
  if store_init 2>"$T/logs/store-init-foreign"; then return 1; fi
  grep -q refusing "$T/logs/store-init-foreign"
  [ "$(cat /mnt/nix/somebody-elses-file)" = precious ] && [ ! -e /mnt/nix/store ]
}
check "store-init: refuses (non-zero) to touch a volume holding data it did not write" t_foreign

t_upgrade() {
  use_volume "$T/vol/nix"
  mkdir -p "$T/payload2"
  echo "from a newer image" > "$T/payload2/new"
  IMG_P2=$(client_nix nix-store --store "$T/img" --add "$T/payload2")
  echo "$IMG_P2" > "$T/img-p2"
  ln -sfn "$IMG_P2" "$T/img/nix/var/nix/gcroots/trampoline-image"
  ln -sfn "$IMG_P2" "$T/img/nix/var/nix/profiles/default"
  store_init
  [ "$(readlink /mnt/nix/var/nix/gcroots/trampoline-image)" = "$IMG_P2" ]
  [ "$(readlink /mnt/nix/var/nix/profiles/default)" = "$IMG_P2" ]
  [ -e "/mnt/nix/store/${IMG_P2#/nix/store/}/new" ]
  # shellcheck disable=SC2010 # store names have no newlines
  ! ls -a /mnt/nix/store | grep -q trampoline-tmp
}
check "store-init: a newer image's store paths, GC root and default profile reach an initialised volume" t_upgrade

umount /mnt/nix
mount --bind "$T/vol/nix" /mnt/nix
umount /nix
mount --bind "$T/vol/nix" /nix
