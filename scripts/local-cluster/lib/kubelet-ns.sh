#!/usr/bin/env bash
# Runs inside the kubelet's own mount namespace (cluster.sh starts it under
# `unshare --mount --propagation unchanged`), then becomes the kubelet.
#
# Why: the kubelet insists on six kernel sysctls (kernel.panic=10, panic_on_oops=1,
# vm.overcommit_memory=1, ...). By default it rewrites them on the shared kernel; with
# protectKernelDefaults it refuses to start when they differ. Here, only in this
# namespace, each differing /proc/sys file is covered by a read-only file holding the
# value the kubelet expects, so it starts and the kernel keeps its settings.
# The kubelet's root dir is a shared mount (made by cluster.sh), so the volume mounts
# the kubelet makes there still reach containerd in the host namespace.
# Usage: kubelet-ns.sh VIEW_DIR KUBELET [ARGS...]
set -euo pipefail
view=$1
shift

# Keep the covers below out of the host namespace even if /proc were shared there.
mount --make-rprivate /proc
mkdir -p "$view"
for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
  kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
  key=${kv%%=*} want=${kv#*=}
  [[ $(cat "/proc/sys/$key") == "$want" ]] && continue
  file=$view/${key//\//.}
  echo "$want" >"$file"
  mount --bind "$file" "/proc/sys/$key"
  mount -o remount,bind,ro "/proc/sys/$key"
done
exec "$@"
