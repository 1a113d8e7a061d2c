# shellcheck shell=bash disable=SC2016,SC2154 # single quotes: expanded in the pod; globals: test.sh
# Faults, with nothing lost: the real pod under the failures a user meets (tracker issue 8,
# part 4). Sourced by test.sh, which provides `tramp`, `check`, `pass`, `fail`, `log`,
# `json_field`, $node_bin, $root, $pod_options and $cluster_kind; kubectl only for what the
# product never does itself (evicting a pod, looking into the nix-daemon container). Safe
# under set -e: a failing step is a failed check, never the end of the journey.
#
#   fault_journey WORK --name <instance> -n <namespace>   (run from the e2e project)
#
# Every wait targets the state it asserts (a tree being unpacked, a session open, a builder
# running, a receiver gone), polled with a deadline: nothing sleeps and hopes. To be sure an
# operation is mid-transfer when the fault strikes, on any machine, the process receiving
# it in the pod is stopped (SIGSTOP) the moment it is at work, and continued afterwards.
#
# Checks that stop the API server or need a small volume use the local cluster's controls
# (test/local-cluster/cluster.sh apiserver-stop|apiserver-start|small-volume); on any
# other cluster they print SKIP lines, which count as neither pass nor failure.
# Not made here: the node disappearing under a command (one node only). The CLI names that
# case from the pod's DisruptionTarget condition (DeletionByPodGC, DeletionByTaintManager)
# the way it names an eviction (scripts/pod/pods.ts).


fault_skip() { printf 'SKIP %s\n' "$*"; }

# fault_wait_pid PID SECONDS: wait for a background job, at most SECONDS; its exit status
# in fault_rc (124 when it had to be killed).
fault_rc=0
fault_wait_pid() {
  local pid=$1 deadline=$((SECONDS + $2))
  fault_rc=0
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      fault_rc=124
      return 0
    fi
    sleep 0.2
  done
  wait "$pid" || fault_rc=$?
}

# The in-pod side (bash + coreutils only), run in the container fault_in_pod picks:
#   hold: wait for a process whose command line matches $FAULT_PATTERN (a glob) and stop
#         it at once; prints "watching", then "held <pid>"
#   gone: wait until no such process is left
# Both give up after $FAULT_SECONDS. The pattern travels in the environment, so the
# scanning shell's own command line never matches it.
# shellcheck disable=SC2016 # expanded in the pod
FAULT_POD='
# Builtins only (no process per entry), so a scan takes milliseconds even on a busy node:
# what it watches for may run only briefly before it does what the hold must precede.
matches() {
  local d argv
  for d in /proc/[0-9]*; do
    mapfile -d "" -t argv 2>/dev/null <"$d/cmdline" || continue
    case "${argv[*]}" in $FAULT_PATTERN) echo "${d#/proc/}" ;; esac
  done
}
deadline=$((SECONDS + FAULT_SECONDS))
case $1 in
  hold)
    echo watching
    while [ "$SECONDS" -lt "$deadline" ]; do
      # With what it had written by then (wchar, when /proc lets us read it): a check can
      # tell a hold mid-transfer from one that came after the last byte was sent.
      for pid in $(matches); do kill -STOP "$pid" 2>/dev/null && { echo "held $pid $(sed -n "s/^wchar: //p" "/proc/$pid/io" 2>/dev/null)"; exit 0; }; done
      sleep 0.05
    done ;;
  gone)
    while [ "$SECONDS" -lt "$deadline" ]; do [ -z "$(matches)" ] && exit 0; sleep 0.2; done ;;
esac
echo "fault: timed out after ${FAULT_SECONDS}s waiting ($1) for: $FAULT_PATTERN ($(matches | tr "\n" " "))" >&2
exit 1'

# fault_in_pod ARGS... -- COMMAND...: COMMAND in the instance ARGS names, in the container
# $fault_container: the user's (through trampoline shell, as a user would) or nix-daemon
# (through kubectl: the pod's store programs for --from run there, out of the user's sight).
fault_container=user
fault_in_pod() {
  local args=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  if [ "$fault_container" = user ]; then
    tramp shell "${args[@]}" -- "$@"
  else
    kubectl exec -i -n "$(journey_arg -n "${args[@]}")" "trampoline-$(journey_arg --name "${args[@]}")" -c "$fault_container" -- "$@"
  fi
}

# fault_pod MODE PATTERN SECONDS ARGS...: FAULT_POD in the instance ARGS names.
fault_pod() {
  local mode=$1 pattern=$2 seconds=$3
  shift 3
  fault_in_pod "$@" -- env "FAULT_PATTERN=$pattern" "FAULT_SECONDS=$seconds" bash -c "$FAULT_POD" fault "$mode" </dev/null
}

# fault_hold OUT PATTERN ARGS...: start holding (in the background) the first process that
# matches PATTERN in the pod; returns once the watcher runs. fault_held then waits for it.
fault_hold_job=""
fault_hold() {
  local out=$1 pattern=$2
  shift 2
  fault_pod hold "$pattern" 100 "$@" >"$out" 2>&1 &
  fault_hold_job=$!
  poll 60 grep -qx watching "$out"
}

# fault_held OUT SECONDS: the held process's pid in fault_held_pid, once it is held, and
# the bytes it had written by then in fault_held_wrote (empty when unknown).
fault_held_pid="" fault_held_wrote=""
fault_held() {
  local out=$1
  fault_wait_pid "$fault_hold_job" "$2"
  fault_held_pid=$(sed -n 's/^held \([0-9][0-9]*\).*$/\1/p' "$out")
  fault_held_wrote=$(sed -n 's/^held [0-9][0-9]* \([0-9][0-9]*\)$/\1/p' "$out")
  [ -n "$fault_held_pid" ] || { sed 's/^/  hold: /' "$out"; return 1; }
}

# fault_held_push WORK NAME LABEL TREE ARGS...: `push-tarball --head ARGS` in the background
# (output in WORK/NAME.out and .err, its pid in fault_push_pid), returning once the pod's
# receiver for TREE is held mid-transfer. Fails (a failed check, status 1) when it never is.
fault_push_pid=""
fault_held_push() {
  local work=$1 name=$2 label=$3 tree=$4
  shift 4
  # index-pack, or unpack-objects for a pack of few objects (push-receive.sh's take_pack).
  fault_hold "$work/hold-$name.out" "git [iu]n[dp]*-[op]*" "$@" ||
    { fail "watch the pod for the push ($label)"; return 1; }
  "$node_bin" "$root/bin/trampoline.js" push-tarball --head "$@" >"$work/$name.out" 2>"$work/$name.err" &
  fault_push_pid=$!
  if ! fault_held "$work/hold-$name.out" 120; then
    fail "the push reached the pod and was held mid-transfer ($label)"
    kill -KILL "$fault_push_pid" 2>/dev/null || true
    return 1
  fi
}

# fault_src_is TREE MARKER ARGS...: /workspace/src is TREE, whole (pushed as TREE, the work
# tree exactly that, the marker line and the big file fault_commit writes).
fault_src_is() {
  local tree=$1 marker=$2
  shift 2
  tramp shell "$@" -- sh -c 'cd /workspace/src && test "$(git rev-parse "refs/trampoline/pushed^{tree}")" = "$1" && test -z "$(git status --porcelain)" && grep -q "^$2 " fault-marker.txt && test "$(wc -c <fault-big.bin)" = 64000000' _ "$tree" "$marker"
}

# fault_mid_transfer ARGS...: the pod's receiver is taking a pack in: index-pack (with its
# temporary pack, or held before it made one: the hold can come right at its start) or
# unpack-objects (a pack of few objects) running.
fault_mid_transfer() {
  tramp shell "$@" -- bash -c 'compgen -G "/workspace/src/.git/objects/pack/tmp_pack_*" >/dev/null && exit 0
    for d in /proc/[0-9]*; do case $(tr "\0" " " <"$d/cmdline" 2>/dev/null) in "git index-pack --stdin"* | "git unpack-objects"*) exit 0 ;; esac; done; exit 1'
}

# fault_release PID ARGS...: continue a held process (gone already is fine).
fault_release() {
  local pid=$1
  shift
  [ -n "$pid" ] || return 0
  fault_in_pod "$@" -- sh -c 'kill -CONT "$1" 2>/dev/null || true' _ "$pid" >/dev/null 2>&1 </dev/null || true
}

# fault_commit TEXT: commit TEXT (made unique) as fault-marker.txt, plus whatever is staged;
# prints the tree.
fault_commit() {
  echo "$1 ($$ $RANDOM)" >fault-marker.txt
  # New content for the big file too: a push that only changed the marker would be over
  # before it could be held mid-transfer.
  head -c 64000000 /dev/urandom >fault-big.bin
  git add fault-marker.txt fault-big.bin
  git -c user.email=e2e@trampoline -c user.name=e2e commit -qm "fault: $1"
  git rev-parse 'HEAD^{tree}'
}

# In the pod: the pushed tree of /workspace/src; and that tree followed by anything a push
# left behind (push-receive.sh's files apart from `pushed`, index-pack's temporary packs).
fault_src() { tramp shell "$@" -- git -C /workspace/src rev-parse 'refs/trampoline/pushed^{tree}' 2>/dev/null; }
fault_trees() {
  tramp shell "$@" -- bash -c 'cd /workspace && out=$(git -C src rev-parse "refs/trampoline/pushed^{tree}" 2>/dev/null)
    for f in .trees/* .trees/.[!.]* src/.git/objects/pack/tmp_*; do [ -e "$f" ] && [ "$f" != .trees/pushed ] && out+=" $f"; done; echo "$out"'
}

fault_cluster() {
  "$root/test/local-cluster/cluster.sh" "$@" || return
  # Back from an API server outage, the node may have missed its lease and been marked
  # unreachable (tainted, its pods evicted): wait until it is Ready and untainted again,
  # the state every later step needs.
  [[ $1 == apiserver-start ]] || return 0
  local deadline=$((SECONDS + 180)) ready taints
  while ((SECONDS < deadline)); do
    ready=$(kubectl get nodes -o jsonpath='{.items[0].status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)
    taints=$(kubectl get nodes -o jsonpath='{.items[0].spec.taints[*].key}' 2>/dev/null)
    [[ $ready == True && $taints != *node.kubernetes.io/unreachable* && $taints != *node.kubernetes.io/not-ready* ]] && return 0
    sleep 1
  done
  echo "the node did not come back Ready and untainted within 180s" >&2
  return 1
}
# The local cluster's API server can be stopped and started by this run.
fault_controls() { [[ $cluster_kind == local && $(id -u) == 0 ]]; }

# A process of this run on this machine (pgrep -f PATTERN), for "nothing left hanging".
fault_local_procs() { pgrep -f "$1" 2>/dev/null | tr '\n' ' '; }

fault_journey() {
  local work=$1
  shift
  local name namespace start
  name=$(journey_arg --name "$@")
  namespace=$(journey_arg -n "$@")
  namespace=${namespace:-default}
  start=$(git rev-parse HEAD)

  # The first push a full volume refuses is this project as it is, plus 64 MB.
  if fault_controls; then
    fault_volume_full "$work" "$name" "$namespace"
  else
    fault_skip "the instance volume full during a push (needs the local cluster's small volumes)"
  fi

  # 64 MB of random data: a push that takes a while, so the CLI is mid-stream when held.
  head -c 64000000 /dev/urandom >fault-big.bin
  git add fault-big.bin
  fault_killed_push "$work" "$@"
  fault_concurrent_pushes "$work" "$@"
  if fault_controls; then
    fault_apiserver_push "$work" "$@"
    fault_tunnel_drop "$work" "$name" "$namespace" "$@"
  else
    fault_skip "kube-apiserver stopped and restarted during a push (needs the local cluster)"
    fault_skip "the connection dropped during an ssh session and copy-closure --from (needs the local cluster)"
  fi
  fault_evicted_build "$work" "$name" "$namespace" "$@"

  # Back to the project as the journey had it (later steps push it elsewhere).
  git reset -q --hard "$start"
  rm -f fault-big.bin fault-marker.txt
}

# 2. The CLI killed with SIGKILL mid-push: the next push works and leaves exactly one tree.
fault_killed_push() {
  local work=$1 tree pid out code=0
  shift
  log "faults: the CLI killed (SIGKILL) mid-push"
  tree=$(fault_commit "killed push")
  fault_held_push "$work" killed "killed push" "$tree" "$@" || return 0
  pid=$fault_push_pid
  check "the push is mid-transfer: the pod's receiver is taking the pack in" fault_mid_transfer "$@"
  check "the push is still running when killed" kill -0 "$pid"
  kill -KILL "$pid" 2>/dev/null || true
  fault_wait_pid "$pid" 10
  check "the killed push is gone (status $fault_rc)" test "$fault_rc" = 137
  # The receiver sees its stream end; the next push follows right away (it waits for the
  # lock if the receiver is still cleaning up).
  fault_release "$fault_held_pid" "$@"
  out=$(tramp push-tarball --head "$@" --json 2>"$work/after-killed.err") || code=$?
  check "the next push works (exit $code)" test "$code" = 0 -a "$(json_field tree <<<"$out")" = "$tree"
  check "and /workspace/.trees has exactly one entry, the pushed one ($(fault_trees "$@"))" test "$(fault_trees "$@")" = "$tree"
  check "and /workspace/src is that tree, complete" fault_src_is "$tree" "killed push" "$@"
  check "no receiver left in the pod" fault_pod gone "*push-receive.sh receive --tree $tree*" 60 "$@"
}

# 5. Two pushes to the same instance at once: serialised by push-receive.sh's lock, both
# correct. The first is held while unpacking; the second must wait, then win.
fault_concurrent_pushes() {
  local work=$1 tree_a tree_b pid_a pid_b code_a code_b clone=$1/clone-b
  shift
  log "faults: two pushes to the same instance at once"
  tree_a=$(fault_commit "push A")
  rm -rf "$clone"
  git clone -q "$PWD" "$clone"
  tree_b=$(cd "$clone" && fault_commit "push B")
  fault_held_push "$work" push-a "push A" "$tree_a" "$@" --quiet || return 0
  pid_a=$fault_push_pid
  (cd "$clone" && exec "$node_bin" "$root/bin/trampoline.js" push-tarball --head "$@" --quiet) >"$work/push-b.out" 2>"$work/push-b.err" &
  pid_b=$!
  check "the second push waits for the first, and says so" poll 60 grep -q 'waiting for another push' "$work/push-b.err"
  check "and has not started receiving while the first holds the lock (one receiving git in the pod)" \
    tramp shell "$@" -- bash -c 'n=0; for d in /proc/[0-9]*; do case $(tr "\0" " " <"$d/cmdline" 2>/dev/null) in "git index-pack --stdin"* | "git unpack-objects"*) n=$((n + 1)) ;; esac; done; test "$n" = 1' 
  fault_release "$fault_held_pid" "$@"
  fault_wait_pid "$pid_a" 120
  code_a=$fault_rc
  fault_wait_pid "$pid_b" 120
  code_b=$fault_rc
  check "both pushes succeed (exit $code_a and $code_b)" test "$code_a" = 0 -a "$code_b" = 0
  check "the first push reported its tree" test "$(cat "$work/push-a.out")" = "$tree_a"
  check "the second push, which went last, is /workspace/src, complete" fault_src_is "$tree_b" "push B" "$@"
  check "and the only tree left ($(fault_trees "$@"))" test "$(fault_trees "$@")" = "$tree_b"
  rm -rf "$clone"
}

# 1. kube-apiserver stopped and restarted during a push: a clear error (the connection to
# the cluster was lost, exit 3), the previous tree intact, the next push works.
fault_apiserver_push() {
  local work=$1 tree before pid code=0 out
  shift
  log "faults: kube-apiserver stopped and restarted during a push"
  before=$(fault_src "$@")
  tree=$(fault_commit "apiserver push")
  fault_held_push "$work" api-push apiserver "$tree" "$@" || return 0
  pid=$fault_push_pid
  check "the push is mid-transfer: the pod's receiver is taking the pack in" fault_mid_transfer "$@"
  fault_cluster apiserver-stop || fail "cluster.sh apiserver-stop"
  fault_wait_pid "$pid" 90
  code=$fault_rc
  fault_cluster apiserver-start >/dev/null || fail "cluster.sh apiserver-start"
  sed 's/^/  push: /' "$work/api-push.err" | tail -n 3
  check "the push fails with exit 3 (got $code)" test "$code" = 3
  check "and says the connection to the cluster was lost (not that the pod was deleted)" \
    bash -c 'grep -q "lost the connection to the cluster" "$1" && ! grep -q deleted "$1"' _ "$work/api-push.err"
  check "and that the previous tree stays" grep -q 'the previous tree or this one' "$work/api-push.err"
  fault_release "$fault_held_pid" "$@"
  check "the receiver in the pod ends (its stream was cut)" fault_pod gone "*push-receive.sh receive --tree $tree*" 60 "$@"
  check "/workspace/src is still the previous tree" test "$(fault_src "$@")" = "$before"
  check "and nothing of the cut push is left ($(fault_trees "$@"))" test "$(fault_trees "$@")" = "${before##*/}"
  code=0
  out=$(tramp push-tarball --head "$@" --json 2>"$work/api-push2.err") || code=$?
  check "the next push works (exit $code)" test "$code" = 0 -a "$(json_field tree <<<"$out")" = "$tree"
  check "and leaves exactly that tree ($(fault_trees "$@"))" test "$(fault_trees "$@")" = "$tree"
}

# 3. The connection dropped under an ssh session (system ssh through the ProxyCommand) and
# under copy-closure --from (nix copy over the exec store): a clear error, nothing left.
# A session is never reconnected; opening the tunnel is retried while the cluster does not
# answer (no byte has gone anywhere yet), and a copy run again after the cut works.
fault_tunnel_drop() {
  local work=$1 name=$2 namespace=$3 cfg alias pid path code
  shift 3
  log "faults: the connection dropped under an ssh session and a copy-closure"
  tramp ssh "$@" --config >/dev/null
  cfg=$(ls "$XDG_STATE_HOME"/trampoline/*/"$namespace/$name/ssh_config")
  alias=trampoline-$name
  local proxies="[t]rampoline.js .*--name $name --quiet proxy $alias"
  local sshs="^ssh .*$alias"

  # An open session; then the API server goes away under it.
  ssh -n -F "$cfg" "$alias" 'echo session-open; exec sleep 120' >"$work/session.out" 2>"$work/session.err" &
  pid=$!
  if ! poll 60 grep -qx session-open "$work/session.out"; then
    fail "an ssh session through the ProxyCommand opens"
    kill -KILL "$pid" 2>/dev/null || true
    return 0
  fi
  fault_cluster apiserver-stop || fail "cluster.sh apiserver-stop"
  fault_wait_pid "$pid" 60
  code=$fault_rc
  sed 's/^/  ssh: /' "$work/session.err" | tail -n 3
  check "ssh ends when the connection drops (exit $code)" test "$code" = 255
  check "with the proxy's message: the connection was lost" grep -q 'trampoline: lost the connection' "$work/session.err"
  check "no trampoline proxy left ($(fault_local_procs "$proxies"))" poll 120 bash -c '! pgrep -f "$1"' _ "$proxies"
  check "no ssh left ($(fault_local_procs "$sshs"))" poll 120 bash -c '! pgrep -f "$1"' _ "$sshs"

  # While the API server is down, a new session waits for it (the proxy retries the open).
  ssh -n -F "$cfg" "$alias" 'echo reopened' >"$work/reopen.out" 2>"$work/reopen.err" &
  pid=$!
  check "a new session waits for the cluster, and says so" poll 120 grep -q 'trying again for up to' "$work/reopen.err"
  fault_cluster apiserver-start >/dev/null || fail "cluster.sh apiserver-start"
  fault_wait_pid "$pid" 90
  check "and opens once the API server is back (exit $fault_rc)" test "$fault_rc" = 0 -a "$(cat "$work/reopen.out")" = reopened

  # copy-closure --from: a path only the pod has; the nix-daemon --stdio that serves it (in
  # the daemon container, beside the signing) held mid-transfer, before it has written the
  # whole path. The channel between it and here buffers megabytes, so a hold that comes after
  # its last write proves nothing (the copy still ends well): that copy is let finish, and
  # the hold tried anew with a fresh path.
  local size=64000000 attempt held=''
  for attempt in 1 2 3; do
    # A fresh path each try: the one a late hold let through is in the local store now.
    path=$(tramp shell "$@" -- sh -c 'f=$HOME/fault-payload-$1 && head -c "$2" /dev/urandom >"$f" && nix-store --add "$f" && rm -f "$f"' _ "$$-$attempt" "$size") ||
      { fail "a path in the pod to copy"; return 0; }
    fault_container=nix-daemon
    fault_hold "$work/hold-copy.out" "nix-daemon --stdio*" "$@" || { fault_container=user; fail "watch the pod for the copy"; return 0; }
    "$node_bin" "$root/bin/trampoline.js" copy-closure "$@" --from "$path" >"$work/copy.out" 2>"$work/copy.err" &
    pid=$!
    if ! fault_held "$work/hold-copy.out" 120; then
      fault_container=user
      sed 's/^/  copy-closure: /' "$work/copy.err" | tail -n 4
      fail "copy-closure --from reached the pod's nix-daemon --stdio"
      kill -KILL "$pid" 2>/dev/null || true
      return 0
    fi
    if [[ $fault_held_wrote =~ ^[0-9]+$ ]] && ((fault_held_wrote < size)); then
      held=yes
      break
    fi
    echo "  held after it had written ${fault_held_wrote:-an unknown number of} bytes of $size (try $attempt): again" >&2
    fault_release "$fault_held_pid" "$@"
    fault_wait_pid "$pid" 120
  done
  if [[ -z $held ]]; then
    fault_container=user
    fail "the pod's nix-daemon --stdio held mid-transfer (3 tries; the last had written ${fault_held_wrote:-?} bytes)"
    kill -KILL "$pid" 2>/dev/null || true
    return 0
  fi
  pass "the pod's nix-daemon --stdio held mid-transfer ($fault_held_wrote of $size bytes written)"
  fault_cluster apiserver-stop || fail "cluster.sh apiserver-stop"
  fault_wait_pid "$pid" 60
  code=$fault_rc
  fault_cluster apiserver-start >/dev/null || fail "cluster.sh apiserver-start"
  sed 's/^/  copy-closure: /' "$work/copy.err" | tail -n 4
  check "copy-closure --from fails when the connection drops (exit $code)" test "$code" != 0 -a "$code" != 124
  check "and says the connection was lost" grep -q 'trampoline: lost the connection' "$work/copy.err"
  local stores="[t]rampoline.js store-stdio .*--name $name "
  check "no store-stdio (Nix's ssh over exec) left ($(fault_local_procs "$stores"))" poll 120 bash -c '! pgrep -f "$1"' _ "$stores"
  check "no nix copy left" poll 120 bash -c '! pgrep -f "^nix .*copy .*--from ssh-ng://trampoline-exec-$1"' _ "$name"
  check "the cut copy left nothing in the local store" bash -c '! nix-store --check-validity "$1" 2>/dev/null' _ "$path"
  fault_release "$fault_held_pid" "$@"
  fault_container=user
  code=0
  tramp copy-closure "$@" --from "$path" --quiet >/dev/null 2>"$work/copy2.err" || code=$?
  check "copy-closure run again works (exit $code)" test "$code" = 0
  check "and the path is complete in the local store" \
    test "$(nix-store --check-validity "$path" 2>/dev/null && wc -c <"$path")" = "$size"
}

# 4. The instance volume full during a push: "the store volume is full", what to do next,
# the previous tree intact. A tmpfs of its own (cluster.sh small-volume) holds the store
# as setup copies it plus a little, and the push is bigger than that little.
fault_volume_full() {
  local work=$1 name=$2 namespace=$3 full volume used size before code=0 avail
  full=$name-full volume=$name-small
  log "faults: the instance volume full during a push"
  local args=(--name "$full" -n "$namespace")
  # What the store takes once setup has copied the image's /nix (the main instance's is
  # that plus this journey's builds: an upper bound), plus 40 MiB.
  used=$(tramp shell --name "$name" -n "$namespace" -- sh -c 'du -sxm /nix 2>/dev/null; true' | cut -f1) || true
  [[ $used =~ ^[0-9]+$ ]] || { fail "measure the store (du said: $used)"; return 0; }
  size=$((used + 40))
  fault_cluster small-volume "$volume" "${size}Mi" "$namespace" "trampoline-$full" >/dev/null ||
    { fail "cluster.sh small-volume $volume ${size}Mi"; return 0; }
  # A second pod beside the journey's: the smallest CPU request, so it fits on a busy node.
  local options=() i
  for ((i = 0; i < ${#pod_options[@]}; i++)); do
    if [[ ${pod_options[i]} == --cpu ]]; then options+=(--cpu 100m) && i=$((i + 1)); else options+=("${pod_options[i]}"); fi
  done
  if tramp setup "${args[@]}" "${options[@]}" --idle-timeout 0 --storage-class "$volume" --store-size "${size}Mi" --quiet >/dev/null 2>"$work/full-setup.err"; then
    pass "setup on a ${size}Mi volume of its own"
    tramp push-tarball --head "${args[@]}" --quiet >/dev/null || fail "the first push to the small volume"
    before=$(fault_src "${args[@]}")
    avail=$(tramp shell "${args[@]}" -- df -Pk /workspace | awk 'NR == 2 { print int($4 / 1024) }')
    echo "x" >fault-marker.txt
    head -c $(((avail + 16) * 1048576)) /dev/urandom >fault-full.bin
    git add fault-marker.txt fault-full.bin
    git -c user.email=e2e@trampoline -c user.name=e2e commit -qm "fault: bigger than the volume"
    tramp push-tarball --head "${args[@]}" >/dev/null 2>"$work/full.err" || code=$?
    sed 's/^/  push: /' "$work/full.err" | tail -n 3
    check "a push bigger than the free ${avail} MiB fails (exit $code)" test "$code" = 1
    check "and says the store volume is full" grep -q 'trampoline: the store volume is full' "$work/full.err"
    check "and what to do: trampoline maintenance or a bigger --store-size" \
      bash -c 'grep -q "trampoline maintenance" "$1" && grep -q -- "--store-size" "$1"' _ "$work/full.err"
    check "/workspace/src is still the previous tree" test "$(fault_src "${args[@]}")" = "$before"
    check "and nothing of the failed push is left ($(fault_trees "${args[@]}"))" test "$(fault_trees "${args[@]}")" = "${before##*/}"
    git reset -q --hard HEAD~1
    rm -f fault-full.bin
  else
    fail "setup on a ${size}Mi volume of its own: $(tail -n 3 "$work/full-setup.err")"
  fi
  tramp clean "${args[@]}" --quiet >/dev/null 2>&1 || true
  poll 120 bash -c '! kubectl get pod "$1" -n "$2" >/dev/null 2>&1 && ! kubectl get pvc "$1" -n "$2" >/dev/null 2>&1' _ "trampoline-$full" "$namespace" ||
    echo "  the pod or PVC trampoline-$full is still there after 120s" >&2
  fault_cluster small-volume-delete "$volume" || fail "cluster.sh small-volume-delete $volume"
}

# 6. The pod evicted during a build: an error naming the eviction, then setup brings the
# pod back with the store intact (a result built before is still valid).
fault_evicted_build() {
  local work=$1 name=$2 namespace=$3 result before pid out salt=evict-$$
  shift 3
  log "faults: the pod evicted during a build"
  tramp push-tarball --head "$@" --quiet >/dev/null || fail "push before the eviction"
  out=$(tramp build "$@" -f hello.nix --remote-only --json 2>/dev/null) || true
  result=$(json_field outputs.0 <<<"$out")
  before=$(fault_src "$@")
  "$node_bin" "$root/bin/trampoline.js" build "$@" -f slow.nix --remote-only -- --arg seconds 600 --argstr salt "$salt" >"$work/evict.out" 2>"$work/evict.err" &
  pid=$!
  # The builder itself (in the nix-daemon container, where builds run) carries the salt;
  # [e]vict-...: a pattern that does not match the grep looking for it.
  if ! poll 120 kubectl exec -n "$namespace" "trampoline-$name" -c nix-daemon -- \
    sh -c 'grep -l -- "$1" /proc/[0-9]*/cmdline 2>/dev/null | grep -q .' _ "[${salt:0:1}]${salt:1}"; then
    fail "the build runs in the pod"
    kill -KILL "$pid" 2>/dev/null || true
    return 0
  fi
  printf '{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"trampoline-%s","namespace":"%s"}}' "$name" "$namespace" >"$work/eviction.json"
  kubectl create --raw "/api/v1/namespaces/$namespace/pods/trampoline-$name/eviction" -f "$work/eviction.json" >/dev/null ||
    fail "evict the pod (Eviction API)"
  fault_wait_pid "$pid" 120
  sed 's/^/  build: /' "$work/evict.err" | tail -n 3
  check "the build fails with exit 5 (got $fault_rc)" test "$fault_rc" = 5
  check "and says the pod was evicted" grep -q 'evicted' "$work/evict.err"
  check "and says to run setup" grep -q 'trampoline setup' "$work/evict.err"
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --json 2>"$work/evict-setup.err") || sed 's/^/  setup: /' "$work/evict-setup.err" | tail -n 4
  check "setup brings the pod back ($(json_field phase <<<"$out" 2>/dev/null))" test "$(json_field phase <<<"$out" 2>/dev/null)" = Running
  check "the result built before is still valid and runs" \
    test "$(tramp shell "$@" -- sh -c 'nix-store --check-validity "$1" && "$1/bin/hello"' _ "$result" 2>/dev/null)" = "Hello from trampoline"
  check "and the pushed tree is still /workspace/src" test "$(fault_src "$@")" = "$before"
}
