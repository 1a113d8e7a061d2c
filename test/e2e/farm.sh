#!/usr/bin/env bash
# shellcheck shell=bash
# shellcheck disable=SC2154 # root, node_bin, pod_options come from test.sh
# test/e2e/farm.sh: sourced by test.sh; farm_journey WORK --name INSTANCE -n NAMESPACE.
# The build farm (issue 15) on the journey's instance (cwd: the e2e project, farm.nix in it):
#   1. setup --workers 2 (small requests: the test node has 2 cores): workers Ready, the
#      main daemon's machines file names them, the user container sees neither the key nor
#      the machines file
#   2. six independent derivations land on at least two pods; each records where it ran
#      (its busybox bind mount's source: a worker's emptyDir names that pod's uid); Nix's
#      log names the workers; the results are in the main store, and one built on a worker
#      alone comes home signature-checked
#   3. status lists the workers
#   4. a worker killed mid-build: the build ends (no hang) and says which worker; setup
#      brings the worker back
#   5. scaling: --workers 1, then 0 (idempotent, machines file follows); down removes
#      workers and keeps the farm Secret; setup without --workers brings them back
#   6. idle: on an instance of its own with a short idle timeout, a build on a worker that
#      outlasts the timeout completes (neither the worker nor the main pod stops under it),
#      then the worker and the main pod both stop as idle
# Every wait polls for the state it asserts, with a deadline.

farm_count() { "$node_bin" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s||"null");console.log(Array.isArray(v)?v.length:0)})'; }

# farm_workers NAMESPACE INSTANCE: "name uid" lines of the instance's worker pods.
farm_workers() {
  kubectl get pods -n "$1" -l "app.kubernetes.io/instance=$2,app.kubernetes.io/component=worker" \
    -o jsonpath='{range .items[*]}{.metadata.name} {.metadata.uid}{"\n"}{end}'
}

farm_machines() { kubectl exec -n "$1" "trampoline-$2" -c nix-daemon -- cat /run/trampoline-farm/machines; }

# farm_wait_workers NAMESPACE INSTANCE N SECONDS: until exactly N worker pods exist.
farm_wait_workers() {
  local deadline=$((SECONDS + $4))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(farm_workers "$1" "$2" | grep -c .)" = "$3" ] && return 0
    sleep 1
  done
  return 1
}

farm_journey() {
  local work=$1/farm
  shift
  local namespace name out salt
  namespace=$(journey_arg -n "$@")
  name=$(journey_arg --name "$@")
  mkdir -p "$work"
  local farm_opts=(--worker-cpu 100m: --worker-memory 128Mi:2Gi)

  log "farm: setup --workers 2"
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --workers 2 "${farm_opts[@]}" --json 2>"$work/setup.err") ||
    { fail "farm: setup --workers 2 ($(tail -n 8 "$work/setup.err" | tr '\n' ' '))"; return 0; }
  check "farm: setup reports 2 workers" test "$(json_field farm.workers <<<"$out" | farm_count)" = 2
  check "farm: 2 worker pods run" test "$(farm_workers "$namespace" "$name" | grep -c .)" = 2
  check "farm: the main daemon's machines file has 2 ssh-ng builders with pinned host keys" \
    test "$(farm_machines "$namespace" "$name" | grep -Ec "^ssh-ng://trampoline@trampoline-$name-worker-[0-9]+ [a-z0-9_,-]+ /etc/trampoline/farm/client_ed25519 1 1 .* - [A-Za-z0-9+/=]+$")" = 2
  check "farm: the user container cannot read the farm client key" \
    kubectl exec -n "$namespace" "trampoline-$name" -c user -- sh -c '! cat /etc/trampoline/farm/client_ed25519 2>/dev/null'
  check "farm: the user container cannot see or write the machines file" \
    kubectl exec -n "$namespace" "trampoline-$name" -c user -- sh -c '! ls /run/trampoline-farm 2>/dev/null && ! touch /run/trampoline-farm/machines 2>/dev/null'
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --json 2>>"$work/setup.err") || true
  check "farm: setup without --workers keeps both workers (reused)" \
    test "$(json_field farm.workers <<<"$out" | "$node_bin" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).filter(w=>w.reused).length))')" = 2

  log "farm: six independent derivations"
  tramp push-tarball "$@" >/dev/null 2>"$work/push.err" || fail "farm: push-tarball ($(tail -n 3 "$work/push.err" | tr '\n' ' '))"
  salt="farm-$$-$RANDOM"
  local started=$SECONDS
  out=$(tramp build "$@" -f farm.nix --remote-only --json d1 d2 d3 d4 d5 d6 -- --argstr salt "$salt" 2>"$work/build.err") ||
    fail "farm: build of six derivations ($(tail -n 5 "$work/build.err" | tr '\n' ' '))"
  log "farm: six 3-s derivations took $((SECONDS - started))s"
  local outputs
  outputs=$(json_field outputs <<<"$out" | "$node_bin" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).join("\n")))' || true)
  check "farm: six results" test "$(grep -c . <<<"$outputs")" = 6
  # Where each ran: the worker whose pod uid its mount source names, else the main pod.
  local places workers
  workers=$(farm_workers "$namespace" "$name")
  # shellcheck disable=SC2086 # one argument per store path
  places=$(tramp shell "$@" -- sh -c 'for p; do head -n 1 "$p"; done' _ $outputs 2>>"$work/build.err" | while read -r line; do
    uid=$(grep -Eo 'pods/[0-9a-f-]{36}/' <<<"$line" | head -n 1 | cut -d/ -f2)
    where=$(grep " ${uid:-none}\$" <<<"$workers" | cut -d' ' -f1)
    echo "${where:-main}"
  done)
  printf '%s\n' "$places" | sort | uniq -c | sed 's/^/    ran on: /' >&2
  check "farm: the derivations ran on at least two pods" test "$(sort -u <<<"$places" | grep -c .)" -ge 2
  check "farm: at least one ran on a worker (its record names the worker pod)" grep -q -- "-worker-" <<<"$places"
  check "farm: Nix's log says it built on the workers over ssh-ng" grep -q "on 'ssh-ng://trampoline@trampoline-$name-worker-" "$work/build.err"
  check "farm: the results are in the main store" tramp shell "$@" -- sh -c 'nix-store --check-validity "$@"' _ $outputs

  # Built on a worker only (client --max-jobs 0), then home as every build result comes:
  # signed in the main daemon container, copied with signature checks (results-home).
  out=$(tramp build "$@" -f farm.nix --no-link --json d1 -- --argstr salt "$salt-home" --arg count 1 --max-jobs 0 2>"$work/home.err") ||
    fail "farm: build on a worker, result home ($(tail -n 5 "$work/home.err" | tr '\n' ' '))"
  local home
  home=$(json_field outputs.0 <<<"$out" || true)
  check "farm: it was built on a worker" grep -q "on 'ssh-ng://trampoline@trampoline-$name-worker-" "$work/home.err"
  check "farm: and its result is in this machine's store" nix-store --check-validity "$home"

  log "farm: status"
  out=$(tramp status "$@" --json 2>/dev/null) || true
  check "farm: status lists 2 workers" test "$(json_field 0.workers <<<"$out" | farm_count)" = 2

  farm_worker_killed "$work" "$namespace" "$name" "$@"

  log "farm: scaling"
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --workers 1 --json 2>>"$work/setup.err") || fail "farm: setup --workers 1"
  check "farm: --workers 1 leaves one worker" farm_wait_workers "$namespace" "$name" 1 60
  check "farm: and one machines line" test "$(farm_machines "$namespace" "$name" | grep -c .)" = 1
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --workers 1 --json 2>>"$work/setup.err") || fail "farm: setup --workers 1 again"
  check "farm: --workers 1 again reuses it" test "$(json_field farm.workers.0.reused <<<"$out")" = true
  # Per-arch workers: the one local node is amd64, so an arm64 worker is refused up front.
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --workers 1 --worker-arch amd64 --json 2>>"$work/setup.err") || fail "farm: setup --worker-arch amd64"
  check "farm: --worker-arch amd64 runs worker-amd64-0 on an amd64 node" test "$(json_field farm.workers.0.pod <<<"$out")" = "trampoline-$name-worker-amd64-0"
  check "farm: its machines line builds x86_64-linux" grep -q "^ssh-ng://trampoline@trampoline-$name-worker-amd64-0 x86_64-linux" <(farm_machines "$namespace" "$name")
  if out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --workers 1 --worker-arch arm64 2>&1); then
    fail "farm: --worker-arch arm64 without an arm64 node succeeded"
  else
    check "farm: --worker-arch arm64 without an arm64 node fails up front, saying so" grep -q arm64 <<<"$out"
    check "farm: and leaves the amd64 worker alone" test "$(farm_workers "$namespace" "$name" | cut -d' ' -f1)" = "trampoline-$name-worker-amd64-0"
  fi
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --workers 0 --json 2>>"$work/setup.err") || fail "farm: setup --workers 0"
  check "farm: --workers 0 removes them" farm_wait_workers "$namespace" "$name" 0 60
  check "farm: and empties the machines file" test -z "$(farm_machines "$namespace" "$name")"
  check "farm: a build without workers still works" tramp build "$@" -f farm.nix --remote-only d1 -- --argstr salt "$salt-local" --arg seconds 0

  log "farm: down removes workers, setup brings them back"
  tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --workers 1 >/dev/null 2>>"$work/setup.err" || fail "farm: setup --workers 1 before down"
  tramp down "$@" >/dev/null 2>>"$work/setup.err" || fail "farm: down"
  check "farm: down leaves no worker" farm_wait_workers "$namespace" "$name" 0 60
  check "farm: down keeps the farm Secret" kubectl get secret -n "$namespace" "trampoline-$name-farm"
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --json 2>>"$work/setup.err") || fail "farm: setup after down ($(tail -n 5 "$work/setup.err" | tr '\n' ' '))"
  check "farm: setup after down brings the recorded worker back" test "$(json_field farm.workers <<<"$out" | farm_count)" = 1

  farm_idle "$work" "$namespace" "$name-fidle"
}

# farm_phase NAMESPACE POD: the pod's phase, or "gone".
farm_phase() { kubectl get pod -n "$1" "$2" -o jsonpath='{.status.phase}' 2>/dev/null || echo gone; }

farm_idle() {
  local work=$1 namespace=$2 name=$3 out deadline
  local args=(--name "$name" -n "$namespace")
  log "farm: idle shutdown covers workers ($name, idle timeout 30s)"
  out=$(tramp setup "${args[@]}" "${pod_options[@]}" --idle-timeout 30 --workers 1 --worker-cpu 100m: --worker-memory 128Mi:2Gi --json 2>"$work/idle-setup.err") ||
    { fail "farm idle: setup ($(tail -n 5 "$work/idle-setup.err" | tr '\n' ' '))"; tramp clean "${args[@]}" >/dev/null 2>&1; return 0; }
  tramp push-tarball "${args[@]}" >/dev/null 2>&1 || fail "farm idle: push-tarball"
  # 45 s on the worker (--max-jobs 0: nothing builds locally), longer than the timeout.
  check "farm idle: a 45-s build on the worker outlasts the 30-s idle timeout" \
    tramp build "${args[@]}" -f farm.nix --remote-only d1 -- --argstr salt "idle-$$-$RANDOM" --arg count 1 --arg seconds 45 --max-jobs 0
  check "farm idle: the worker still runs after it" test "$(farm_phase "$namespace" "trampoline-$name-worker-0")" = Running
  deadline=$((SECONDS + 120))
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(farm_phase "$namespace" "trampoline-$name-worker-0")" = Succeeded ] && [ "$(farm_phase "$namespace" "trampoline-$name")" = Succeeded ] && break
    sleep 2
  done
  check "farm idle: then the worker stops as idle" test "$(farm_phase "$namespace" "trampoline-$name-worker-0")" = Succeeded
  check "farm idle: and so does the main pod" test "$(farm_phase "$namespace" "trampoline-$name")" = Succeeded
  check "farm idle: the worker says why" bash -c 'kubectl get pod -n "$1" "$2" -o jsonpath="{.status.containerStatuses[*].state.terminated.message}" | grep -q "idle: no build"' _ "$namespace" "trampoline-$name-worker-0"
  tramp clean "${args[@]}" >/dev/null 2>&1 || fail "farm idle: clean"
  check "farm idle: clean leaves no object of the instance" test -z "$(kubectl get pods,secrets,configmaps,pvc -n "$namespace" -l "app.kubernetes.io/instance=$name" -o name 2>&1)"
}

# A worker deleted (no grace) while it builds: the build ends within the ssh bounds and
# names the worker, or Nix built it elsewhere; then setup replaces the worker.
farm_worker_killed() {
  local work=$1 namespace=$2 name=$3
  shift 3
  log "farm: a worker killed mid-build"
  local salt="farm-kill-$$-$RANDOM" victim='' deadline pid rc
  tramp build "$@" -f farm.nix --remote-only d1 d2 d3 -- --argstr salt "$salt" --arg seconds 120 >"$work/kill.out" 2>"$work/kill.err" &
  pid=$!
  deadline=$((SECONDS + 90))
  while [ -z "$victim" ] && [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
    for w in $(farm_workers "$namespace" "$name" | cut -d' ' -f1); do
      if kubectl exec -n "$namespace" "$w" -c nix-daemon -- sh -c 'ls -d /tmp/nix-build-farm-* >/dev/null 2>&1'; then victim=$w; break; fi
    done
    [ -n "$victim" ] || sleep 1
  done
  if [ -z "$victim" ]; then
    fail "farm: no worker started building within 90s ($(tail -n 3 "$work/kill.err" | tr '\n' ' '))"
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return 0
  fi
  # The client build runs in the user container: the instance's monitor sees it as activity.
  local busy='' until_=$((SECONDS + 25))
  while [ -z "$busy" ] && [ "$SECONDS" -lt "$until_" ]; do
    busy=$(tramp status --name "$name" -n "$namespace" --json 2>/dev/null | json_field 0.activity 2>/dev/null | grep -v '^\[\]$' | grep -v '^undefined$' || true)
    [ -n "$busy" ] || sleep 2
  done
  check "farm: the instance is busy while a worker builds (monitor activity: ${busy:0:80})" test -n "$busy"
  log "farm: deleting $victim while it builds"
  kubectl delete pod -n "$namespace" "$victim" --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
  # Bounded: ServerAliveInterval 5 x 3 in the main daemon's ssh config; 150s covers the
  # other derivations (120s each) finishing elsewhere too.
  local killed=$SECONDS
  deadline=$((SECONDS + 150))
  while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
  log "farm: the build ended $((SECONDS - killed))s after the kill"
  if kill -0 "$pid" 2>/dev/null; then
    fail "farm: the build still runs 150s after its worker was killed (hangs)"
    kill "$pid" 2>/dev/null
  else
    pass "farm: the build ended after its worker was killed (no hang)"
  fi
  rc=0
  wait "$pid" || rc=$?
  sed 's/^/    build: /' "$work/kill.err" | grep -iE 'error|fail|cannot|worker' | tail -n 6 >&2 || true
  if [ "$rc" = 0 ]; then
    pass "farm: Nix built the killed worker's derivation elsewhere"
  else
    check "farm: the failed build names the killed worker ($victim)" grep -q -- "$victim" "$work/kill.err"
  fi
  local out
  out=$(tramp setup "$@" "${pod_options[@]}" --idle-timeout 0 --json 2>>"$work/setup.err") || fail "farm: setup after the kill ($(tail -n 5 "$work/setup.err" | tr '\n' ' '))"
  check "farm: setup after the kill runs 2 workers again" test "$(json_field farm.workers <<<"$out" | farm_count)" = 2
}
