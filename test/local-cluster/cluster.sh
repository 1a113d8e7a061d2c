#!/usr/bin/env bash
# The local single-node Kubernetes test cluster: upstream components (etcd, containerd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubelet) started by hand, the
# way hack/local-up-cluster.sh does, on a network the harness makes and fences itself.
#
#   cluster.sh up                       start (idempotent); prints the kubeconfig path
#   cluster.sh down                     stop and remove everything up made (idempotent)
#   cluster.sh status                   what runs; exit 0 only if the cluster answers
#   cluster.sh import ARCHIVE REF       OCI archive -> containerd (k8s.io) as REF
#   cluster.sh kubeconfig               print the admin kubeconfig path
#   cluster.sh user-kubeconfig NAME [GROUP...]
#                                       print a kubeconfig for user NAME (no rights until bound)
#   cluster.sh apiserver-stop           stop kube-apiserver only (fault tests); the rest runs on
#   cluster.sh apiserver-start          start it again (and fresh controllers); wait until ready
#   cluster.sh small-volume NAME SIZE NAMESPACE CLAIM
#                                       a PV of a real SIZE-limited filesystem (tmpfs) with a
#                                       StorageClass NAME of its own, bound to that claim only;
#                                       prints the StorageClass name (down removes it)
#   cluster.sh small-volume-delete NAME the PV, its StorageClass and its filesystem
#   cluster.sh restart-containerd       rewrite containerd's config and restart it only
#
# stdout carries only the kubeconfig path (up, kubeconfig); progress goes to stderr.
# See README.md beside this file for the network rules and where state lives.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/lib/common.sh"
source "$HERE/lib/certs.sh"
source "$HERE/lib/configs.sh"
source "$HERE/lib/images.sh"

COMPONENTS=(etcd containerd kube-apiserver kube-controller-manager kube-scheduler kubelet)
BIN= # directory of the Kubernetes binaries, set by ensure_binaries

kc() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# fail COMPONENT REASON: show where it went wrong and stop (processes stay for a look;
# `down` removes them).
fail() {
  local component=$1
  shift
  echo "cluster: up failed: $*" >&2
  log_tail "$component"
  exit 1
}

UP_T0=$SECONDS

# lock: one up/down at a time (two test runs sharing the machine must not interleave).
lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"
  flock -w 600 9 || die "another cluster.sh up/down holds $STATE/.lock"
}

need_root() { [[ $(id -u) == 0 ]] || die "must run as root (it manages mounts, cgroups, a bridge and iptables)"; }

# ---------------------------------------------------------------------------------
# processes

# start NAME MATCH CMD...: run CMD detached (own session), log to $LOGS/NAME.log, record
# its PID. MATCH is a string of its command line that is unique to this harness; it lets
# pid_alive tell our process from a recycled PID. Skips a NAME that already runs.
start() {
  local name=$1 match=$2
  shift 2
  if pid_alive "$name"; then
    log "$name already running (pid $(recorded_pid "$name"))"
    return 0
  fi
  log "starting $name"
  [[ ! -f $LOGS/$name.log ]] || mv -f "$LOGS/$name.log" "$LOGS/$name.previous.log"
  setsid "$@" >"$LOGS/$name.log" 2>&1 </dev/null 9>&- & # 9: the lock, not for them
  echo "$!" >"$RUN/$name.pid"
  echo "$match" >"$RUN/$name.match"
}

# wait_until NAME SECONDS WHAT CMD...: poll CMD; fail early if NAME died.
wait_until() {
  local name=$1 seconds=$2 what=$3 deadline
  shift 3
  deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    # Only "is it still there": pid_alive's command-line match can miss a process that is
    # still between fork and exec (under load, the first poll sees bash's command line),
    # and a PID recorded seconds ago cannot have been recycled yet.
    kill -0 "$(recorded_pid "$name")" 2>/dev/null || fail "$name" "$name exited before: $what"
    ((SECONDS < deadline)) || fail "$name" "timed out after ${seconds}s for: $what"
    sleep 0.5
  done
  log "ok: $what ($((SECONDS - UP_T0))s)"
}

any_alive() {
  local pid
  for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
  return 1
}

# stop NAME...: TERM the recorded PIDs together, wait for them, KILL after 30 s.
stop() {
  local name pid pids=() i
  for name in "$@"; do
    if pid_alive "$name"; then
      pid=$(recorded_pid "$name")
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for ((i = 0; i < 300; i++)); do
    any_alive "${pids[@]}" || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || continue
    log "pid $pid ignored SIGTERM for 30s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  for name in "$@"; do rm -f "$RUN/$name.pid" "$RUN/$name.match"; done
}

# ---------------------------------------------------------------------------------
# host setup: bridge, firewall, cgroups, mounts

setup_bridge() {
  # The node IP must exist before the kubelet starts; pods hang off this bridge only.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip -4 addr show dev "$BRIDGE" | grep -q " $NODE_IP/" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# The rules that keep pod traffic on this machine, in both directions, by subnet and by
# interface (a privileged pod could spoof its source). Inserted before any pod exists.
FIREWALL_RULES=(
  "-s $POD_CIDR ! -d $POD_CIDR"
  "! -s $POD_CIDR -d $POD_CIDR"
  "-i $BRIDGE ! -o $BRIDGE"
  "! -i $BRIDGE -o $BRIDGE"
)
FIREWALL6_RULES=("-i $BRIDGE" "-o $BRIDGE")

setup_firewall() {
  local rule
  for rule in "${FIREWALL_RULES[@]}"; do
    # shellcheck disable=SC2086 # a rule is a word list on purpose
    iptables -C FORWARD $rule -m comment --comment "$IPT_TAG" -j DROP 2>/dev/null ||
      iptables -I FORWARD 1 $rule -m comment --comment "$IPT_TAG" -j DROP
  done
  for rule in "${FIREWALL6_RULES[@]}"; do
    # shellcheck disable=SC2086
    ip6tables -C FORWARD $rule -m comment --comment "$IPT_TAG" -j DROP 2>/dev/null ||
      ip6tables -I FORWARD 1 $rule -m comment --comment "$IPT_TAG" -j DROP
  done
}

remove_firewall() {
  local rule
  for rule in "${FIREWALL_RULES[@]}"; do
    # shellcheck disable=SC2086
    while iptables -D FORWARD $rule -m comment --comment "$IPT_TAG" -j DROP 2>/dev/null; do :; done
  done
  for rule in "${FIREWALL6_RULES[@]}"; do
    # shellcheck disable=SC2086
    while ip6tables -D FORWARD $rule -m comment --comment "$IPT_TAG" -j DROP 2>/dev/null; do :; done
  done
}

cgroup_hierarchies() {
  awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts | grep '^/sys/fs/cgroup'
}

# All pods live under one cgroup of their own (kubelet cgroupRoot), so down can find and
# remove what is left. cpuset needs its cpus/mems filled before children can be made.
setup_cgroups() {
  local h
  for h in $(cgroup_hierarchies); do
    mkdir -p "$h/$CGROUP_PARENT"
    if [[ -f $h/cpuset.cpus && ! -s $h/$CGROUP_PARENT/cpuset.cpus ]] ||
      [[ -f $h/cpuset.cpus && -z $(cat "$h/$CGROUP_PARENT/cpuset.cpus") ]]; then
      cat "$h/cpuset.cpus" >"$h/$CGROUP_PARENT/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h/$CGROUP_PARENT/cpuset.mems"
    fi
  done
}

is_mountpoint() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/self/mounts; }

setup_mounts() {
  # The kubelet root is a shared mount: the kubelet (in its own mount namespace) mounts
  # volumes there and containerd (in the host's) must see them.
  mkdir -p "$KUBELET_ROOT"
  is_mountpoint "$KUBELET_ROOT" || mount --bind "$KUBELET_ROOT" "$KUBELET_ROOT"
  mount --make-rshared "$KUBELET_ROOT"
  # The in-tree host-path provisioner always uses /tmp/hostpath_pv: put our dir there.
  mkdir -p "$HOSTPATH_DATA" "$HOSTPATH_MOUNT"
  is_mountpoint "$HOSTPATH_MOUNT" || mount --bind "$HOSTPATH_DATA" "$HOSTPATH_MOUNT"
}

# ---------------------------------------------------------------------------------
# components

ensure_binaries() {
  BIN=$("$HERE/build-kube.sh") || die "building the Kubernetes binaries failed (see above)"
  [[ -x $BIN/kubelet ]] || die "build-kube.sh printed $BIN, which has no kubelet"
}

etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }

start_etcd() {
  start etcd "--data-dir=$STATE/etcd" etcd --name=trampoline --data-dir="$STATE/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="trampoline=http://127.0.0.1:$ETCD_PEER_PORT" \
    --logger=zap --log-outputs=stderr --log-level=warn
  wait_until etcd 60 "etcd healthy" etcd_healthy
}

# "${IN_MOUNT_NS[@]}" COVER... -- CMD...: CMD in a mount namespace of its own with host paths
# covered (see lib/in-mount-ns.sh for why the kubelet and containerd need one).
IN_MOUNT_NS=(unshare --mount --propagation unchanged -- "$HERE/lib/in-mount-ns.sh")

# Host directories the components insist on (hard-coded in them), covered in their mount
# namespaces by directories of the state dir. Only empty mount points stay on the host,
# and down removes those.
CONTAINERD_COVERS=(
  "$STATE/resolv.conf:/etc/resolv.conf:ro" # copied into pods whose DNS config is empty
  "$STATE/containerd/run:/run/containerd"  # shim sockets
  "$STATE/cni/cache:/var/lib/cni"          # libcni's result cache
)
KUBELET_COVERS=(
  "$STATE/kubelet-var:/var/lib/kubelet"          # the device-plugin socket
  "$STATE/container-logs:/var/log/containers"    # links to container logs
)

# make_cover_dirs COVER...: both ends of each cover must exist.
make_cover_dirs() {
  local cover src target
  for cover in "$@"; do
    IFS=: read -r src target _ <<<"$cover"
    [[ -e $src ]] || mkdir -p "$src"
    [[ -e $target ]] || mkdir -p "$target"
  done
}

# remove_cover_dirs COVER...: the host-side mount points, when empty (never anything else).
remove_cover_dirs() {
  local cover src target
  for cover in "$@"; do
    IFS=: read -r src target _ <<<"$cover"
    if [[ -d $target ]]; then rmdir "$target" 2>/dev/null || true; fi
  done
}

# start_containerd [MOUNT_NS]: MOUNT_NS (a path to a mount namespace) is for restart-containerd.
start_containerd() {
  # Its own mount namespace: pods get the harness's empty resolv.conf instead of the
  # host's, and what containerd writes to fixed host paths lands in the state dir.
  local ns=("${IN_MOUNT_NS[@]}" "${CONTAINERD_COVERS[@]}" --)
  # A restart goes back into the namespace of the containerd it replaces: the pods' network
  # namespaces are mounted there only (port-forward and sandbox teardown need them).
  [[ -z ${1:-} ]] || ns=(nsenter --mount="$1" --)
  make_cover_dirs "${CONTAINERD_COVERS[@]}"
  # A proxy on a closed loopback port: should anything ask containerd to pull from a
  # registry, the request fails here instead of leaving the machine. The one exception is
  # the harness's own bridge address (the e2e's registry, test/e2e/registry.sh).
  start containerd "$STATE/containerd/config.toml" \
    "${ns[@]}" \
    env NO_PROXY="$NODE_IP" no_proxy="$NODE_IP" \
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 \
    containerd --config "$STATE/containerd/config.toml"
  wait_until containerd 60 "containerd answering" ctr --address "$CONTAINERD_SOCK" version
}

ensure_pause_image() {
  local archive
  archive=$(pause_archive)
  ensure_image "$archive" "$PAUSE_IMAGE"
}

apiserver_ready() { kc get --raw /readyz; }

start_apiserver() {
  start kube-apiserver "--tls-cert-file=$PKI/apiserver.crt" "$BIN/kube-apiserver" \
    --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address="$NODE_IP" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --allow-privileged=true --profiling=false
  wait_until kube-apiserver 120 "apiserver ready" apiserver_ready
}

start_controller_manager() {
  start kube-controller-manager "--kubeconfig=$PKI/controller-manager.kubeconfig" \
    "$BIN/kube-controller-manager" \
    --kubeconfig="$PKI/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$PKI/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
    --enable-hostpath-provisioner=true --profiling=false
  wait_until kube-controller-manager 60 "controller-manager healthy" \
    curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
}

start_scheduler() {
  start kube-scheduler "--kubeconfig=$PKI/scheduler.kubeconfig" "$BIN/kube-scheduler" \
    --kubeconfig="$PKI/scheduler.kubeconfig" \
    --authentication-kubeconfig="$PKI/scheduler.kubeconfig" \
    --authorization-kubeconfig="$PKI/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --profiling=false
  wait_until kube-scheduler 60 "scheduler healthy" \
    curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
}

ensure_storage_class() {
  kc get storageclass standard >/dev/null 2>&1 && return 0
  storage_class_manifest | kc apply -f - >/dev/null || fail kube-apiserver "creating StorageClass standard failed"
}

node_ready() {
  [[ $(kc get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}') == True ]]
}

# The sysctls the kubelet checks, with the values it wants (protectKernelDefaults makes
# it fail on any difference): files holding those values, to cover the differing ones.
sysctl_covers() {
  local kv key want file view=$STATE/kubelet-sysctl-view
  mkdir -p "$view"
  for kv in vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1 \
    kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000; do
    key=${kv%%=*} want=${kv#*=}
    [[ $(cat "/proc/sys/$key") == "$want" ]] && continue
    file=$view/${key//\//.}
    echo "$want" >"$file"
    echo "$file:/proc/sys/$key:ro"
  done
}

start_kubelet() {
  local covers
  mapfile -t covers < <(sysctl_covers)
  make_cover_dirs "${KUBELET_COVERS[@]}"
  start kubelet "--root-dir=$KUBELET_ROOT" "${IN_MOUNT_NS[@]}" "${covers[@]}" "${KUBELET_COVERS[@]}" -- \
    "$BIN/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$PKI/kubelet.kubeconfig" \
    --root-dir="$KUBELET_ROOT" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --v=1
  wait_until kubelet 120 "node $NODE_NAME Ready" node_ready
}

# ---------------------------------------------------------------------------------
# commands

cmd_up() {
  need_root
  lock
  "$HERE/deps.sh" >&2 || die "installing the Debian packages failed (see above)"
  ensure_binaries
  mkdir -p "$STATE" "$LOGS" "$RUN"
  ensure_certs
  write_containerd_config
  write_cni_config
  write_kubelet_config
  setup_bridge
  setup_firewall
  setup_cgroups
  setup_mounts
  start_etcd
  start_containerd
  ensure_pause_image
  start_apiserver
  start_controller_manager
  start_scheduler
  ensure_storage_class
  start_kubelet
  wait_until kube-controller-manager 60 "service account default/default" \
    kc -n default get serviceaccount default
  log "up in $((SECONDS - UP_T0))s; export KUBECONFIG=$KUBECONFIG_ADMIN"
  echo "$KUBECONFIG_ADMIN"
}

# Pods first, through containerd, while it still runs: kill and delete every task and
# container of the CRI namespace so no shim or pod process outlives the cluster.
remove_pods() {
  local id
  pid_alive containerd || return 0
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    ctr_k8s tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
    ctr_k8s tasks delete --force "$id" >/dev/null 2>&1 || true
  done
  for id in $(ctr_k8s containers ls -q 2>/dev/null); do
    ctr_k8s containers delete "$id" >/dev/null 2>&1 || true
  done
}

# Whatever is still alive and ours after the components stopped: shims serving our
# containerd socket, and processes in our pod cgroups. Found by those exact marks only.
kill_leftovers() {
  local pids=() pid file h
  for file in $(grep -lsF -- "$CONTAINERD_SOCK" /proc/[0-9]*/cmdline); do
    pid=${file#/proc/}
    pid=${pid%/cmdline}
    [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */containerd-shim* ]] && pids+=("$pid")
  done
  for h in $(cgroup_hierarchies); do
    [[ -d $h/$CGROUP_PARENT ]] || continue
    mapfile -t -O "${#pids[@]}" pids < <(find "$h/$CGROUP_PARENT" -name cgroup.procs -exec cat {} + 2>/dev/null)
  done
  ((${#pids[@]})) || return 0
  mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -un)
  log "killing ${#pids[@]} leftover process(es) of the cluster: ${pids[*]}"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
}

# Every mount under the state dir and the hostpath dir, deepest first (this covers the
# kubelet's volumes, containerd's rootfs/shm mounts and the pods' network namespaces).
unmount_all() {
  local m
  awk -v s="$STATE" -v h="$HOSTPATH_MOUNT" \
    'index($2, s "/") == 1 || $2 == s || index($2, h "/") == 1 || $2 == h { print length($2), $2 }' \
    /proc/self/mounts | sort -rn | cut -d' ' -f2- |
    while IFS= read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" || log "could not unmount $m"
    done
}

remove_cgroups() {
  local h
  for h in $(cgroup_hierarchies); do
    [[ -d $h/$CGROUP_PARENT ]] || continue
    find "$h/$CGROUP_PARENT" -depth -type d -exec rmdir {} + 2>/dev/null ||
      log "could not remove all of $h/$CGROUP_PARENT"
  done
}

# Runtime data only; certs, kubeconfigs, images (containerd root) and logs are kept so
# the next `up` is warm and a kubeconfig handed out stays valid.
remove_data() {
  rm -rf --one-file-system "$STATE/etcd" "$HOSTPATH_DATA" "$KUBELET_ROOT" "$STATE/cni/ipam" \
    "$STATE/cni/cache" "$STATE/containerd/state" "$STATE/containerd/run" "$STATE/runc" \
    "$STATE/pod-logs" "$STATE/container-logs" "$STATE/kubelet-var" "$STATE/kubelet-sysctl-view"
  remove_cover_dirs "${CONTAINERD_COVERS[@]}" "${KUBELET_COVERS[@]}" "$HOSTPATH_DATA:$HOSTPATH_MOUNT"
}

cmd_down() {
  need_root
  lock
  stop kubelet # first, so it restarts nothing
  remove_pods
  stop kube-scheduler kube-controller-manager kube-apiserver containerd
  stop etcd # last: the apiserver shuts down cleanly only while it answers
  kill_leftovers
  unmount_all
  remove_cgroups
  ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
  remove_firewall
  remove_data
  log "down"
}

cmd_status() {
  local name up=0
  for name in "${COMPONENTS[@]}"; do
    if pid_alive "$name"; then
      printf '%-24s running (pid %s)\n' "$name" "$(recorded_pid "$name")"
    else
      printf '%-24s stopped\n' "$name"
    fi
  done
  if [[ -f $KUBECONFIG_ADMIN ]] && apiserver_ready >/dev/null 2>&1; then
    printf '%-24s %s\n' apiserver "ready at https://127.0.0.1:$APISERVER_PORT"
    printf '%-24s %s\n' "node $NODE_NAME" "Ready=$(kc get node "$NODE_NAME" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || echo unknown)"
    printf '%-24s %s\n' kubeconfig "$KUBECONFIG_ADMIN"
    up=1
  else
    printf '%-24s %s\n' apiserver "not answering"
  fi
  ((up))
}

cmd_import() {
  need_root
  [[ $# == 2 ]] || die "usage: cluster.sh import OCI_ARCHIVE IMAGE_REF"
  pid_alive containerd || die "containerd of the cluster is not running: run cluster.sh up first"
  import_archive "$1" "$2"
  log "imported $1 as $2"
}

cmd_kubeconfig() {
  [[ -f $KUBECONFIG_ADMIN ]] || die "no kubeconfig yet: run cluster.sh up"
  echo "$KUBECONFIG_ADMIN"
}

# user-kubeconfig NAME [GROUP...]: a non-admin user (the RBAC tests bind rights to it).
cmd_user_kubeconfig() {
  [[ $# -ge 1 ]] || die "usage: cluster.sh user-kubeconfig NAME [GROUP...]"
  user_kubeconfig "$@"
}

# apiserver-stop / apiserver-start: the fault tests take the API server away under a
# running command (everything else keeps running: pods, kubelet, etcd). The stop is short:
# TERM, and KILL after 5 s (with exec streams open the apiserver drains for 30 s and more),
# so the outage stays well inside the node monitor's grace period and the node is never
# marked unreachable (which would taint it and keep new pods off it for a while).
cmd_apiserver_stop() {
  need_root
  lock
  local pid i
  pid_alive kube-apiserver || { log "kube-apiserver is not running"; return 0; }
  pid=$(recorded_pid kube-apiserver)
  log "stopping kube-apiserver (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "kube-apiserver still draining after 5s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$RUN/kube-apiserver.pid" "$RUN/kube-apiserver.match"
  log "kube-apiserver stopped"
}

# The controller-manager and the scheduler are restarted behind it: informers that lost
# their watches can take a minute to see the kubelet's lease again, and meanwhile the node
# controller marks the node unreachable (tainted: new pods stay Pending). Fresh ones start
# from a current view, so the cluster after the fault is the cluster before it.
cmd_apiserver_start() {
  need_root
  lock
  pid_alive etcd || die "the cluster is not up (etcd is not running): run cluster.sh up"
  ensure_binaries
  UP_T0=$SECONDS
  start_apiserver
  stop kube-controller-manager kube-scheduler
  start_controller_manager
  start_scheduler
  wait_until kubelet 60 "node $NODE_NAME Ready" node_ready
}

# Small volumes: the host-path provisioner does not enforce sizes, so a volume that must
# fill up is a tmpfs of that size. It lives under the kubelet root: that mount is shared
# into the kubelet's and containerd's mount namespaces (cluster.sh made it rshared before
# they started), so a tmpfs mounted there later reaches both. `down` unmounts everything
# under the state dir, these too, and removes the kubelet root.
SMALL_VOLUMES=$KUBELET_ROOT/small-volumes

cmd_small_volume() {
  need_root
  [[ $# == 4 ]] || die "usage: cluster.sh small-volume NAME SIZE NAMESPACE CLAIM"
  local name=$1 size=$2 namespace=$3 claim=$4 bytes dir
  [[ $name =~ ^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$ ]] || die "small-volume: NAME must be a DNS label (got '$name')"
  [[ $size =~ ^[0-9]+(Ki|Mi|Gi)$ ]] || die "small-volume: SIZE must be like 512Mi or 2Gi (got '$size')"
  bytes=$(numfmt --from=iec-i "$size")
  lock
  pid_alive kubelet && apiserver_ready >/dev/null 2>&1 || die "the cluster is not up: run cluster.sh up"
  dir=$SMALL_VOLUMES/$name
  mkdir -p "$dir"
  if is_mountpoint "$dir"; then
    mount -o "remount,size=$bytes" "$dir"
  else
    mount -t tmpfs -o "size=$bytes,mode=0755" "trampoline-small-$name" "$dir"
  fi
  kc apply -f - >/dev/null <<EOF || die "small-volume: creating StorageClass and PV $name failed"
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: $name
  labels: {app.kubernetes.io/managed-by: trampoline-local-cluster}
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $name
  labels: {app.kubernetes.io/managed-by: trampoline-local-cluster}
spec:
  capacity: {storage: $size}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: $name
  claimRef: {namespace: $namespace, name: $claim}
  hostPath: {path: $dir, type: Directory}
EOF
  log "small volume $name: tmpfs of $size at $dir, PV and StorageClass $name for claim $namespace/$claim"
  echo "$name"
}

cmd_small_volume_delete() {
  need_root
  [[ $# == 1 ]] || die "usage: cluster.sh small-volume-delete NAME"
  local name=$1 dir
  [[ $name =~ ^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$ ]] || die "small-volume-delete: NAME must be a DNS label (got '$name')"
  lock
  dir=$SMALL_VOLUMES/$name
  if apiserver_ready >/dev/null 2>&1; then
    kc delete pv "$name" --ignore-not-found --wait=true --timeout=60s >/dev/null || log "could not delete PV $name"
    kc delete storageclass "$name" --ignore-not-found >/dev/null || log "could not delete StorageClass $name"
  fi
  if is_mountpoint "$dir"; then umount "$dir" || umount -l "$dir" || die "could not unmount $dir"; fi
  [[ ! -d $dir ]] || rmdir "$dir"
  log "small volume $name removed"
}

# restart-containerd: a new config.toml takes effect on a running cluster (pods keep
# running: their shims outlive containerd). A `sleep` of ours holds the old containerd's
# mount namespace across the restart, and the new one starts in it (see start_containerd).
cmd_restart_containerd() {
  need_root
  lock
  pid_alive containerd || die "containerd of the cluster is not running: run cluster.sh up"
  write_containerd_config
  local ns holder i
  ns=/proc/$(recorded_pid containerd)/ns/mnt
  nsenter --mount="$ns" -- sleep 300 </dev/null >/dev/null 2>&1 9>&- &
  holder=$!
  for ((i = 0; i < 100; i++)); do
    [[ $(readlink "/proc/$holder/ns/mnt" 2>/dev/null) != "$(readlink "$ns")" ]] || break
    sleep 0.1
  done
  ((i < 100)) || { kill "$holder" 2>/dev/null; die "could not enter containerd's mount namespace"; }
  stop containerd
  start_containerd "/proc/$holder/ns/mnt"
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  log "containerd restarted (pid $(recorded_pid containerd))"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  import) cmd_import "$@" ;;
  kubeconfig) cmd_kubeconfig ;;
  user-kubeconfig) cmd_user_kubeconfig "$@" ;;
  apiserver-stop) cmd_apiserver_stop ;;
  apiserver-start) cmd_apiserver_start ;;
  small-volume) cmd_small_volume "$@" ;;
  small-volume-delete) cmd_small_volume_delete "$@" ;;
  restart-containerd) cmd_restart_containerd ;;
  *)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
}

main "$@"
