# shellcheck shell=bash
# Images without a registry: a root filesystem directory -> OCI layout (umoci) ->
# OCI archive (skopeo) -> containerd's k8s.io namespace (ctr import). Sourced.

# oci_archive_from_dir ROOTFS REF OUT [UMOCI-CONFIG-FLAGS...]: one-layer image of ROOTFS.
oci_archive_from_dir() {
  local rootfs=$1 ref=$2 out=$3 tmp
  shift 3
  tmp=$(mktemp -d)
  # umoci needs a bundle it unpacked itself; copy the tree into its rootfs.
  umoci init --layout "$tmp/oci" >/dev/null
  umoci new --image "$tmp/oci:img" >/dev/null
  umoci unpack --image "$tmp/oci:img" "$tmp/bundle" >/dev/null
  cp -a "$rootfs/." "$tmp/bundle/rootfs/"
  umoci repack --image "$tmp/oci:img" "$tmp/bundle" >/dev/null
  umoci config --image "$tmp/oci:img" --config.workingdir / --config.env PATH=/bin "$@" >/dev/null
  umoci gc --layout "$tmp/oci" >/dev/null
  rm -f "$out.tmp"
  skopeo copy --quiet "oci:$tmp/oci:img" "oci-archive:$out.tmp:$ref" >&2
  mv "$out.tmp" "$out"
  rm -rf "$tmp"
}

# pause_archive: the sandbox image (static C pause), cached per source hash.
pause_archive() {
  local hash out tmp
  hash=$(cat "$HERE/pause.c" "$HERE/lib/images.sh" | sha256sum | cut -c1-16)
  out=$CACHE/local-cluster/images/pause-$hash.oci.tar
  if [[ ! -f $out ]]; then
    log "building the pause image"
    mkdir -p "$(dirname "$out")"
    tmp=$(mktemp -d)
    gcc -Os -static -o "$tmp/pause" "$HERE/pause.c"
    strip "$tmp/pause"
    mkdir -p "$tmp/root"
    install -m 0755 "$tmp/pause" "$tmp/root/pause"
    oci_archive_from_dir "$tmp/root" "$PAUSE_IMAGE" "$out" --config.entrypoint /pause
    rm -rf "$tmp"
  fi
  echo "$out"
}

# busybox_archive: a tiny shell image (busybox-static with all its applets) for tests.
busybox_archive() {
  local hash out tmp applet
  hash=$(cat /bin/busybox "$HERE/lib/images.sh" | sha256sum | cut -c1-16)
  out=$CACHE/local-cluster/images/busybox-$hash.oci.tar
  if [[ ! -f $out ]]; then
    log "building the busybox image"
    mkdir -p "$(dirname "$out")"
    tmp=$(mktemp -d)
    mkdir -p "$tmp/root/bin" "$tmp/root/tmp" "$tmp/root/etc"
    install -m 0755 /bin/busybox "$tmp/root/bin/busybox"
    for applet in $(/bin/busybox --list); do
      [[ $applet == busybox ]] || ln -s busybox "$tmp/root/bin/$applet"
    done
    chmod 1777 "$tmp/root/tmp"
    echo 'root:x:0:0:root:/:/bin/sh' >"$tmp/root/etc/passwd"
    echo 'root:x:0:' >"$tmp/root/etc/group"
    # A command, not an entrypoint: `kubectl run ... -- sleep 60` then runs sleep.
    oci_archive_from_dir "$tmp/root" "$BUSYBOX_IMAGE" "$out" --config.cmd sh
    rm -rf "$tmp"
  fi
  echo "$out"
}

# archive_digest ARCHIVE: digest of the (first) manifest in an OCI archive's index.
archive_digest() {
  (tar -xOf "$1" index.json 2>/dev/null || tar -xOf "$1" ./index.json) |
    grep -oE '"digest" *: *"sha256:[0-9a-f]{64}"' | head -n1 | grep -oE 'sha256:[0-9a-f]{64}'
}

# image_digest REF: what REF points at in the cluster's containerd (empty if absent).
image_digest() { ctr_k8s images ls "name==$1" 2>/dev/null | awk 'NR > 1 { print $3 }'; }

# import_archive ARCHIVE REF: make REF name the (single) image in ARCHIVE inside the
# cluster's containerd, whatever name the archive itself carries.
import_archive() {
  local archive=$1 ref=$2 digest tmpname=import.trampoline.local/image
  [[ -f $archive ]] || die "no such archive: $archive"
  # The manifest digest from the archive's own index decides what REF points at.
  digest=$(archive_digest "$archive") || die "$archive: no image in its index.json (is it an OCI archive?)"
  # --digests names the image <base>@<digest>; it is retagged to REF, then dropped.
  ctr_k8s images import --digests --base-name "$tmpname" "$archive" >&2
  ctr_k8s images tag --force "$tmpname@$digest" "$ref" >/dev/null
  ctr_k8s images rm "$tmpname@$digest" >/dev/null 2>&1 || true
  [[ $(image_digest "$ref") == "$digest" ]] || die "import of $archive as $ref did not show up in containerd"
}

# ensure_image ARCHIVE REF: import unless REF already is this archive's image (warm up).
ensure_image() {
  [[ $(image_digest "$2") == "$(archive_digest "$1")" ]] && return 0
  log "importing $2"
  import_archive "$1" "$2"
}
