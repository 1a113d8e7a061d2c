#!/usr/bin/env bash
# Runs as the first program of a fresh mount namespace (cluster.sh starts it under
# `unshare --mount --propagation unchanged`), covers some host paths with files of the
# harness, then becomes the component. The covers exist only in this namespace.
#
# Usage: in-mount-ns.sh [SRC:TARGET[:ro]]... -- COMMAND [ARGS...]
#
# Used for:
# - the kubelet: it insists on six kernel sysctls (kernel.panic=10, vm.overcommit_memory=1,
#   ...) and either rewrites them on the shared kernel or, with protectKernelDefaults,
#   refuses to start. Covering each differing /proc/sys file with one holding the
#   expected value lets it start while the kernel keeps its settings.
# - containerd: it copies the host's /etc/resolv.conf into every pod whose DNS config is
#   empty; covering that file with an empty one gives pods an empty resolver file. Its
#   shims' sockets (/run/containerd/s) land in the state dir too.
# Mounts under the kubelet root stay shared (cluster.sh made it a shared mount), so
# volumes the kubelet mounts there reach containerd's namespace.
set -euo pipefail

while (($#)) && [[ $1 != -- ]]; do
  IFS=: read -r src target mode <<<"$1"
  shift
  # Make the mount holding TARGET private here first, so the cover cannot propagate back
  # to the host (on hosts where / is a shared mount). Only that one mount: the kubelet
  # root keeps its sharing.
  mount --make-private "$(findmnt -n -o TARGET --target "$target")"
  mount --bind "$src" "$target"
  [[ $mode != ro ]] || mount -o remount,bind,ro "$target"
done
[[ ${1:-} == -- ]] || { echo "in-mount-ns: usage: $0 [SRC:TARGET[:ro]]... -- COMMAND [ARGS...]" >&2; exit 2; }
shift
exec "$@"
