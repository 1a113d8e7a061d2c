#!/usr/bin/env bash
# Installs the Debian packages the local cluster needs, skipping those already there
# (CI runs on fresh machines; a warm machine pays one dpkg-query). Go (for the
# Kubernetes build, see build-kube.sh) and kubectl come with the machine, not from here.
set -euo pipefail

packages=(
  containerd runc             # the container runtime (CRI) and its OCI runtime
  etcd-server                 # the apiserver's store
  containernetworking-plugins # bridge, host-local, loopback in /usr/lib/cni
  iptables conntrack iproute2 # the fence around the pod network, the bridge
  util-linux mount            # unshare, mount (the kubelet's mount namespace)
  debootstrap umoci skopeo    # images without a registry
  busybox-static gcc libc6-dev # the pause image (static C) and the test image
  openssl curl ca-certificates # certificates; health checks
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || { echo "deps: need root to install: ${missing[*]}" >&2; exit 1; }
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if ! command -v kubectl >/dev/null; then
  # Debian's kubernetes-client is 1.20: too old for exec v5 (stdin EOF). The machine
  # image ships kubectl 1.32; try an apt source that has it before giving up.
  apt-get install -y -qq kubectl >&2 2>/dev/null ||
    { echo "deps: kubectl (>= 1.30) is missing and no apt source provides it" >&2; exit 1; }
fi
