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
  docker-registry apache2-utils # the e2e's own OCI registry (CNCF distribution) and htpasswd -B
  tmux                        # the sessions journey's stand-in for nixpkgs#tmux (tmux-bundle.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

# docker-registry ships a service (init script and systemd unit) that would serve
# /etc/docker/registry/config.yml on 0.0.0.0:5000. The e2e runs its own instance, bound to
# the harness's bridge address only, so the package's service must never run: a
# policy-rc.d refuses every start during the install (unless the machine has its own),
# and afterwards the service is disabled and, should it run anyway, stopped.
POLICY_RC=/usr/sbin/policy-rc.d
policy_added=
deny_service_starts() {
  [[ -e $POLICY_RC ]] && return 0
  printf '#!/bin/sh\n# deps.sh (trampoline local cluster): no service starts during its install\nexit 101\n' >"$POLICY_RC"
  chmod 0755 "$POLICY_RC"
  policy_added=1
}
allow_service_starts() {
  [[ -z $policy_added ]] || rm -f "$POLICY_RC"
  policy_added=
}
disable_registry_service() {
  update-rc.d docker-registry disable >/dev/null 2>&1 || true
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
  elif command -v deb-systemd-helper >/dev/null; then
    deb-systemd-helper disable docker-registry.service >/dev/null 2>&1 || true
  fi
  # Started by the init script despite the policy (a machine's own policy-rc.d allowed it).
  if [[ -x /etc/init.d/docker-registry ]] && /etc/init.d/docker-registry status >/dev/null 2>&1; then
    /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  fi
  echo "deps: docker-registry's system service is disabled (the e2e runs its own registry)" >&2
}

if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || { echo "deps: need root to install: ${missing[*]}" >&2; exit 1; }
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  installing_registry=
  [[ " ${missing[*]} " != *" docker-registry "* ]] || installing_registry=1
  if [[ -n $installing_registry ]]; then
    deny_service_starts
    trap allow_service_starts EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  if [[ -n $installing_registry ]]; then
    allow_service_starts
    trap - EXIT
    disable_registry_service
  fi
fi

if ! command -v kubectl >/dev/null; then
  # Debian's kubernetes-client is 1.20: too old for exec v5 (stdin EOF). The machine
  # image ships kubectl 1.32; try an apt source that has it before giving up.
  apt-get install -y -qq kubectl >&2 2>/dev/null ||
    { echo "deps: kubectl (>= 1.30) is missing and no apt source provides it" >&2; exit 1; }
fi
