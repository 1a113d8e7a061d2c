# shellcheck shell=bash disable=SC2034 # the settings are used by the scripts that source this
# Shared settings and helpers for cluster.sh and smoke.sh (sourced, not run).
# Every address, port and path of the harness is defined here, once.

HERE=${HERE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
STATE=${TRAMPOLINE_CLUSTER_DIR:-/var/lib/trampoline/cluster}
CACHE=${TRAMPOLINE_CACHE:-/var/cache/trampoline}

# Network: everything the harness owns lives in 10.213.0.0/16 and on its own bridge.
BRIDGE=trampbr0
POD_CIDR=10.213.0.0/24
NODE_IP=10.213.0.1 # the bridge's address: pods' gateway, the node IP, the kubelet's address
SERVICE_CIDR=10.213.16.0/24
SERVICE_IP=10.213.16.1 # the `kubernetes` Service (first address of SERVICE_CIDR)
NODE_NAME=trampoline

# Loopback ports, none of them a default, so a cluster elsewhere on the machine cannot clash.
ETCD_PORT=12379
ETCD_PEER_PORT=12380
APISERVER_PORT=16443
KUBELET_PORT=10350         # on NODE_IP (the apiserver reaches it there)
KUBELET_HEALTHZ_PORT=10348 # on loopback
KCM_PORT=10357
SCHEDULER_PORT=10359

PAUSE_IMAGE=localhost/trampoline/pause:1
BUSYBOX_IMAGE=localhost/trampoline/busybox:1

PKI=$STATE/pki
LOGS=$STATE/logs
RUN=$STATE/run # pid files
KUBECONFIG_ADMIN=$STATE/admin.kubeconfig
CONTAINERD_SOCK=$STATE/containerd/containerd.sock
KUBELET_ROOT=$STATE/kubelet
HOSTPATH_DATA=$STATE/hostpath-pv
HOSTPATH_MOUNT=/tmp/hostpath_pv # hard-coded in the in-tree host-path provisioner
CGROUP_PARENT=trampoline        # pods live under /sys/fs/cgroup/<controller>/trampoline

IPT_TAG=trampoline-cluster # iptables comment marking every rule the harness adds

log() { echo "cluster: $*" >&2; }
die() {
  echo "cluster: error: $*" >&2
  exit 1
}

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# pid_alive NAME: the recorded process NAME runs and is still the program we started
# (guards against a recycled PID after a reboot or a crash).
pid_alive() {
  local name=$1 pid
  pid=$(cat "$RUN/$name.pid" 2>/dev/null) || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "$(cat "$RUN/$name.match" 2>/dev/null || echo "$name")"
}

recorded_pid() { cat "$RUN/$1.pid" 2>/dev/null; }

# log_tail NAME: what failed, where the whole log is.
log_tail() {
  local f="$LOGS/$1.log"
  [[ -f $f ]] || return 0
  echo "---- last lines of $f ----" >&2
  tail -n 25 "$f" >&2
  echo "---- (full log: $f) ----" >&2
}
