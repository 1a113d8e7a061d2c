#!/usr/bin/env bash
# test/bench/split-cpus.sh COMMAND...: run COMMAND (a benchmark) on CPU 1 while the local
# cluster (test/local-cluster: API server, etcd, controllers, kubelet, containerd, its
# shims and every pod process) is held on CPU 0, then give the cluster all CPUs back.
#
# On one small machine the cluster and the client share two cores, so a copy's local Nix
# work can never overlap with the channel. This splits them the way a real cluster does
# (the API server and the node elsewhere, the laptop's cores for the client), roughly: the
# cluster gets one core for everything. Pod processes are pinned as they appear (a poll
# every 50 ms, each process once), so an exec's first milliseconds may run on either core.
# Linux, root, cgroup v1 paths of the local cluster; changes nothing when they are missing.
set -euo pipefail
(($# > 0)) || { echo "usage: $0 COMMAND..." >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "split-cpus.sh: must run as root (it sets other processes' CPU affinity)" >&2; exit 2; }
command -v taskset >/dev/null || { echo "split-cpus.sh: needs taskset (util-linux)" >&2; exit 2; }
(($(nproc) >= 2)) || { echo "split-cpus.sh: needs 2 CPUs" >&2; exit 2; }

# Process names (comm: 15 characters at most), not command lines: a client's may name them.
CLUSTER_PROCS='kube-apiserver|kube-controller|kube-scheduler|kubelet|etcd|containerd|containerd-shim'
PODS=/sys/fs/cgroup/cpu/trampoline/kubepods

pinner() {
  declare -A pinned
  pin() {
    [[ -n ${pinned[$1]:-} ]] && return
    taskset -a -p -c 0 "$1" >/dev/null 2>&1 || true
    pinned[$1]=1
  }
  local p f
  while true; do
    for p in $(pgrep -x "$CLUSTER_PROCS"); do pin "$p"; done
    for f in "$PODS"/*/cgroup.procs "$PODS"/*/*/cgroup.procs "$PODS"/*/*/*/cgroup.procs; do
      [[ -r $f ]] || continue
      while read -r p; do pin "$p"; done <"$f"
    done
    sleep 0.05
  done
}

restore() {
  local p
  for p in $(pgrep -x "$CLUSTER_PROCS"); do taskset -a -p -c "0-$(($(nproc) - 1))" "$p" >/dev/null 2>&1 || true; done
}

(taskset -p -c 0 "$BASHPID" >/dev/null && pinner) &
pinner_pid=$!
# The pinner's last taskset may still land after it is killed: restore after it is gone.
trap 'kill "$pinner_pid" 2>/dev/null || true; wait "$pinner_pid" 2>/dev/null || true; sleep 0.2; restore' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
code=0
taskset -c 1 "$@" || code=$?
exit "$code"
