# shellcheck shell=bash disable=SC2154,SC2164 # $root, $cluster_kind, $pod_options...: test.sh and test/e2e/cluster.sh; cd failures fail the journey under set -e
# The main end-to-end journey (run_e2e): the test image and the binary cache, setup, the
# base checks of every command, then each test/e2e/<name>.sh journey (<name>_journey), and
# cleanup. TRAMPOLINE_E2E_ONLY=faults,workspace runs setup and those journeys only.
# Sourced by test/e2e/run.sh, which provides the helpers (test/lib.sh, tramp, journey_arg).

run_e2e() {
  # This host's own Nix (the laptop side) never reaches for a binary cache or the flake
  # registry: test traffic stays on this machine.
  export NIX_CONFIG=$'substituters =\nflake-registry =\n'"${NIX_CONFIG:-}"
  # The laptop side's static busybox (local evaluation imports it as a builder).
  [[ -x /bin/busybox ]] || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends busybox-static >&2
  choose_cluster
  log "end-to-end on the ${cluster_kind} cluster ($(kubectl config current-context 2>/dev/null || echo "KUBECONFIG=$KUBECONFIG"))"
  provide_image

  # Globals, not locals: the EXIT trap runs after an aborted function has unwound.
  work=$(mktemp -d)
  instance=e2e-$$
  namespace=${TRAMPOLINE_TEST_NAMESPACE:-default}
  export XDG_STATE_HOME=$work/state
  common=(--name "$instance" -n "$namespace")
  # Whatever happens, leave nothing behind in the cluster (nor the local cluster itself).
  e2e_cleanup() {
    # Every step runs, whatever the one before it returned.
    set +e
    tramp clean "${common[@]}" --quiet >/dev/null 2>&1 || true
    tramp clean --name "$instance-idle" -n "$namespace" --quiet >/dev/null 2>&1 || true
    cache_stop
    registry_cleanup
    roundtrip_cleanup "$namespace" "$instance-rt"
    mux_cleanup
    rm -rf "$work"
    release_cluster
  }
  trap 'cd "$root"; e2e_cleanup' EXIT
  # The pods substitute from a real local binary cache (and nothing else: tests are offline).
  if [[ $cluster_kind == local ]]; then
    cache_serve "$work" && pod_options+=("${cache_options[@]}") || fail "starting the local binary cache"
  fi

  # A project to push: the test derivations in a fresh git repository.
  local project=$work/project
  mkdir -p "$project"
  cp test/e2e/*.nix "$project/"
  # build brings ./result links home, as nix build does: not part of the tree.
  printf 'result*\n' >"$project/.gitignore"
  git -C "$project" init -q
  git -C "$project" -c user.email=e2e@trampoline -c user.name=e2e add -A
  git -C "$project" -c user.email=e2e@trampoline -c user.name=e2e commit -qm "e2e project"
  cd "$project"

  log "setup"
  local out
  out=$(tramp setup "${common[@]}" "${pod_options[@]}" --idle-timeout 0 --json) ||
    { fail "setup (everything after it needs the pod)"; summary; exit 1; }
  check "setup reports a running pod" test "$(json_field phase <<<"$out")" = Running
  out=$(tramp setup "${common[@]}" "${pod_options[@]}" --idle-timeout 0 --json)
  check "second setup reuses the pod" test "$(json_field reused <<<"$out")" = true
  if [[ -n ${TRAMPOLINE_E2E_ONLY:-} ]]; then
    local journey
    for journey in ${TRAMPOLINE_E2E_ONLY//,/ }; do
      [[ $journey == faults ]] && journey=fault
      log "journey: $journey"
      if declare -F "${journey}_journey" >/dev/null; then
        "${journey}_journey" "$work" "${common[@]}"
      else
        fail "no journey named $journey (test/e2e/*.sh define <name>_journey)"
      fi
    done
    cd "$root"
    return 0
  fi

  log "push-tarball"
  out=$(tramp push-tarball "${common[@]}" --json)
  check "pushed tree is HEAD's tree" test "$(json_field tree <<<"$out")" = "$(git rev-parse 'HEAD^{tree}')"
  check "pushed file is in the pod" test "$(tramp shell "${common[@]}" -- cat /workspace/src/hello.nix)" = "$(cat hello.nix)"

  log "build -f hello.nix"
  # --remote-only: the result stays in the pod, so copy-closure --from below has work to do.
  out=$(tramp build "${common[@]}" -f hello.nix --remote-only --json -- --argstr salt "e2e-$$-$RANDOM")
  local result
  result=$(json_field outputs.0 <<<"$out")
  check "build printed a store path" grep -q '^/nix/store/.*-hello-trampoline$' <<<"$result"
  check "built program runs in the pod" test "$(tramp shell "${common[@]}" -- "$result/bin/hello")" = "Hello from trampoline"

  log "shell"
  check "shell runs as UID 1000" test "$(tramp shell "${common[@]}" -- id -u)" = 1000
  local code=0
  tramp shell "${common[@]}" -- sh -c 'exit 42' || code=$?
  check "shell passes the exit code through (42)" test "$code" = 42

  log "escape suite (the user container must not reach root)"
  escape_journey "$work" "${common[@]}"

  log "claude (agent sessions)"
  agent_journey "${common[@]}"
  log "detachable agent sessions"
  sessions_journey "$work" "${common[@]}"

  log "sh -c (a local agent's shell, run in the pod)"
  # Uncommitted local edits reach the pod before the command; cwd maps to the pushed copy.
  mkdir -p sub
  echo "edited locally $$" >sub/note.txt
  local sh_out
  sh_out=$(cd sub && TRAMPOLINE_NAME=$instance TRAMPOLINE_NAMESPACE=$namespace "$root/bin/trampoline-sh" -c 'cat note.txt; pwd; echo to-stderr >&2; exit 3' 2>"$work/sh.err") && code=0 || code=$?
  check "sh -c passes the exit code through (3, got $code)" test "$code" = 3
  check "sh -c ran on the uncommitted local edit" grep -qx "edited locally $$" <<<"$sh_out"
  check "sh -c ran in the pod's copy of the local directory" grep -qx '/workspace/src/sub' <<<"$sh_out"
  check "sh -c keeps stderr apart from stdout" bash -c 'grep -qx to-stderr "$1" && ! grep -q to-stderr <<<"$2"' _ "$work/sh.err" "$sh_out"
  sh_out=$(TRAMPOLINE_NAME=$instance TRAMPOLINE_NAMESPACE=$namespace "$root/bin/trampoline-sh" -c 'printf "%s|" "$0" "$@"' name 'a b' c)
  check "sh -c passes \$0 and arguments like sh ($sh_out)" test "$sh_out" = 'name|a b|c|'
  rm -rf sub

  log "workspace: incremental push, pod edits, diff and pull, git in the pod"
  workspace_journey "$work" "${common[@]}"

  log "connection reuse (the local per-instance helper)"
  mux_journey "$work" "${common[@]}"

  log "ssh"
  check "ssh (built-in client) runs a command" test "$(tramp ssh "${common[@]}" -- echo via-ssh2)" = via-ssh2
  tramp ssh "${common[@]}" --config >/dev/null
  local ssh_config
  ssh_config=$(ls "$XDG_STATE_HOME"/trampoline/*/"$namespace/$instance/ssh_config")
  check "system ssh with the pinned host key" test "$(ssh -F "$ssh_config" "trampoline-$instance" echo via-openssh </dev/null)" = via-openssh
  check "ssh_config pins the host key strictly" grep -q 'StrictHostKeyChecking yes' "$ssh_config"
  local known_hosts=${ssh_config%/ssh_config}/known_hosts
  cp "$known_hosts" "$work/known_hosts.good"
  # A different key in known_hosts must make ssh refuse the pod.
  echo "trampoline-$instance $(ssh-keygen -q -t ed25519 -N '' -f "$work/other" && cut -d' ' -f1,2 "$work/other.pub")" >"$known_hosts"
  check "system ssh refuses a host key that is not pinned" bash -c '! ssh -F "$1" "$2" true </dev/null 2>/dev/null' _ "$ssh_config" "trampoline-$instance"
  cp "$work/known_hosts.good" "$known_hosts"
  # Evaluate here, build there: the untrusted pod user still builds what the laptop sends.
  mkdir -p "$work/busybox-dir" && cp /bin/busybox "$work/busybox-dir/busybox"
  out=$(NIX_SSHOPTS="-F $ssh_config" nix --extra-experimental-features nix-command build --no-link --json \
    --store "ssh-ng://trampoline-$instance" --eval-store auto -f "$root/test/e2e/local-eval.nix" \
    --arg busyboxDir "$work/busybox-dir" --argstr salt "eval-$$" 2>"$work/eval.err" | json_field 0.outputs.out) || true
  check "local evaluation, build in the pod over ssh-ng (no trust needed): $out" \
    tramp shell "${common[@]}" -- sh -c 'test -n "$1" && grep -qx "evaluated-on-the-laptop $2" "$1"' _ "$out" "eval-$$"

  log "round trip: results home, --eval local, submodules and LFS, the pod's system, the pod as a remote builder"
  roundtrip_journey "$work" "$namespace" "$instance-rt"

  if [[ $cluster_kind == local ]]; then
    log "binary caches (a local HTTP cache signed by the test host)"
    cache_journey "$work" "$ssh_config" "${common[@]}"
  else
    echo "SKIP binary cache checks: they need the local cluster's bridge to reach this host's cache"
  fi

  log "copy-closure --from"
  local signing_key
  signing_key=$(tramp status "${common[@]}" --json | json_field 0.signingKey)
  check "status --json shows the pod's signing key ($signing_key)" grep -Eq "^trampoline-$namespace-$instance-1:[A-Za-z0-9+/]{43}=$" <<<"$signing_key"
  check "the pod signed its build with that key" \
    tramp shell "${common[@]}" -- sh -c 'nix path-info --sigs "$1" | grep -qF -- "$2"' _ "$result" "${signing_key%%:*}"
  # Without the pod's key the local Nix refuses the path: so signatures really are checked.
  check "a copy that does not trust the pod's key is refused" \
    bash -c '! NIX_SSHOPTS="-F $1" nix --extra-experimental-features nix-command copy --from "ssh-ng://trampoline-$2" "$3" 2>"$4" && grep -qi signature "$4"' \
    _ "$ssh_config" "$instance" "$result" "$work/unsigned.err"
  # A temp dir of its own, so that what it leaves there is its own.
  mkdir -p "$work/cc-tmp"
  out=$(TMPDIR=$work/cc-tmp tramp copy-closure "${common[@]}" --from "$result" --json --verbose 2>"$work/cc.err") || fail "copy-closure --from $result"
  check "copy-closure --from went through the exec store ($(json_field store <<<"$out"))" test "$(json_field store <<<"$out")" = "ssh-ng://trampoline-exec-$instance"
  check "over its FIFO bridge (no second CLI relaying)" grep -q "first connection took the FIFO bridge" "$work/cc.err"
  check "and removed its ssh stand-in ($(ls "$work/cc-tmp"))" bash -c '! compgen -G "$1/trampoline-exec-store-*"' _ "$work/cc-tmp"
  check "the exec store runs Nix's store programs only" \
    bash -c '! "$@" -x -- sh -c id </dev/null >/dev/null 2>"$0" && grep -q "is not a Nix store program" "$0"' "$work/stdio.err" \
    "$node_bin" "$root/bin/trampoline.js" store-stdio "${common[@]}" -- "trampoline-exec-$instance"
  code=0
  tramp copy-closure "${common[@]}" --from /nix/store/00000000000000000000000000000000-not-in-the-pod >/dev/null 2>"$work/absent.err" || code=$?
  check "copy-closure --from a path the pod lacks says so, by name (exit $code)" \
    grep -q "the pod's store does not have /nix/store/00000000000000000000000000000000-not-in-the-pod" "$work/absent.err"
  check "result closure copied into the local store" test -x "$result/bin/hello"
  check "result runs locally" test "$("$result/bin/hello")" = "Hello from trampoline"

  log "copy-closure (to the pod)"
  # A path only the local store has: a file with this run's content, added locally.
  local payload local_path
  payload=$work/payload-$$
  echo "made on the laptop $$ $RANDOM" >"$payload"
  local_path=$(nix-store --add "$payload")
  check "local path is not in the pod yet" tramp shell "${common[@]}" -- sh -c '! nix-store --check-validity "$1" 2>/dev/null' _ "$local_path"
  tramp copy-closure "${common[@]}" "$local_path" --quiet
  check "copied path is valid in the pod's store with its content" \
    test "$(tramp shell "${common[@]}" -- sh -c 'nix-store --check-validity "$1" && cat "$1"' _ "$local_path")" = "$(cat "$payload")"
  # It arrived through the pod's root nix-daemon (the local nix copy --to, store-import.ts),
  # which the import exec then signed with the instance key: it can come back out checked.
  check "the pod signed the copied path with its key" \
    tramp shell "${common[@]}" -- sh -c 'nix path-info --sigs "$1" | grep -qF -- "$2"' _ "$local_path" "${signing_key%%:*}"
  check "and no nix-daemon --stdio of the copy is left in the daemon container" \
    poll 60 no_stdio_daemon "$namespace" "trampoline-$instance"
  out=$(tramp copy-closure "${common[@]}" "$local_path" --json) || fail "copy-closure $local_path again"
  check "copying it again sends nothing (sent $(json_field sent <<<"$out") of $(json_field closure <<<"$out"))" \
    test "$(json_field sent <<<"$out")" = 0 -a "$(json_field closure <<<"$out")" = 1

  log "push-flake"
  out=$(tramp push-flake "${common[@]}" --json) || fail "push-flake (in $PWD)"
  local flake_source
  flake_source=$(json_field path <<<"$out")
  check "flake source is in the pod's store" tramp shell "${common[@]}" -- test -e "$flake_source"

  log "maintenance"
  out=$(tramp maintenance "${common[@]}" --json)
  check "maintenance reports sizes" test -n "$(json_field before <<<"$out")"
  check "maintenance keeps the build result" tramp shell "${common[@]}" -- test -x "$result/bin/hello"
  check "maintenance keeps the copied path and the pushed flake" \
    tramp shell "${common[@]}" -- nix-store --check-validity "$local_path" "$flake_source"

  log "egress policy (the object; this cluster's bridge CNI does not enforce NetworkPolicy)"
  tramp setup "${common[@]}" "${pod_options[@]}" --idle-timeout 0 --egress 192.0.2.0/24,198.51.100.7 --quiet >/dev/null 2>"$work/egress.err" ||
    fail "setup --egress"
  out=$(kubectl get networkpolicy "trampoline-$instance-egress" -n "$namespace" -o json 2>&1) || true
  check "setup --egress makes the instance's NetworkPolicy (egress only, this pod only)" \
    bash -c 'grep -q "\"Egress\"" <<<"$1" && grep -q "\"app.kubernetes.io/instance\": \"$2\"" <<<"$1"' _ "$out" "$instance"
  check "it allows DNS, the listed destinations and the binary cache" \
    bash -c 'for want in "\"port\": 53" 192.0.2.0/24 198.51.100.7/32 "$2"; do grep -qF -- "$want" <<<"$1" || exit 1; done' _ "$out" "${cache_host:+$cache_host/32}"
  tramp setup "${common[@]}" "${pod_options[@]}" --idle-timeout 0 --egress all --quiet >/dev/null 2>&1 || fail "setup --egress all"
  check "setup --egress all lifts it" bash -c '! kubectl get networkpolicy "$1" -n "$2" >/dev/null 2>&1' _ "trampoline-$instance-egress" "$namespace"

  log "failure paths"
  code=0
  tramp build "${common[@]}" -f fail.nix 2>"$work/fail.err" || code=$?
  check "failed build exits non-zero ($code)" test "$code" -ne 0
  check "failed build shows the builder's message" grep -q 'fails on purpose' "$work/fail.err"

  interrupted_push "$work" "${common[@]}"
  fault_journey "$work" "${common[@]}"

  log "build farm (worker pods as remote builders)"
  farm_journey "$work" "${common[@]}"

  log "idle shutdown"
  idle_shutdown "$work" "$namespace" "$instance-idle"

  log "image pulls from a real registry (password, pull secret)"
  registry_journey "$work" "${common[@]}"

  if [[ $cluster_kind == local ]]; then
    log "RBAC: container/rbac.yaml as a non-admin user, doctor"
    rbac_journey "$work" "${pod_options[@]}"
  fi

  log "clean"
  tramp clean "${common[@]}" --json >/dev/null
  tramp clean --name "$instance-idle" -n "$namespace" --json >/dev/null
  check "clean leaves no labelled object" test -z "$(kubectl get pods,pvc,secrets,configmaps,networkpolicies -n "$namespace" -l "app.kubernetes.io/instance in ($instance,$instance-idle)" -o name 2>&1)"
  cd "$root"
}

# no_stdio_daemon NAMESPACE POD: no `nix-daemon --stdio` runs in the pod's daemon container
# (the copies' store programs end with them).
no_stdio_daemon() {
  # shellcheck disable=SC2016 # for the pod's shell
  ! kubectl exec -n "$1" "$2" -c nix-daemon -- sh -c 'for d in /proc/[0-9]*; do case $(tr "\0" " " <"$d/cmdline" 2>/dev/null) in "nix-daemon --stdio"*) exit 0 ;; esac; done; exit 1'
}

# Ctrl-C in the middle of a push: exit 130, the previous workspace intact, nothing leaked.
interrupted_push() {
  local work=$1
  shift
  log "Ctrl-C during push-tarball"
  local pushed_tree='git -C /workspace/src rev-parse "refs/trampoline/pushed^{tree}"'
  local before
  before=$(tramp shell "$@" -- sh -c "$pushed_tree")
  head -c 300000000 /dev/urandom >big.bin
  git add big.bin && git -c user.email=e2e@trampoline -c user.name=e2e commit -qm "big"
  # node itself in the background, so the signal reaches it (not a wrapping subshell).
  "$node_bin" "$root/bin/trampoline.js" push-tarball "$@" >"$work/push.out" 2>&1 &
  local pid=$!
  # Interrupt while the pack is on its way: once the pod's receiver runs.
  local deadline=$((SECONDS + 120))
  until tramp shell "$@" -- sh -c 'pgrep -f "[p]ush-receive.sh receive" >/dev/null'; do
    kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)) || break
  done
  kill -INT "$pid"
  local code=0
  wait "$pid" || code=$?
  check "interrupted push exits 130 (got $code)" test "$code" = 130
  check "the pod's pushed tree is still the previous one" test "$(tramp shell "$@" -- sh -c "$pushed_tree")" = "$before"
  check "the work tree has nothing of the interrupted push" tramp shell "$@" -- sh -c 'test ! -e /workspace/src/big.bin && git -C /workspace/src diff --quiet && test -z "$(git -C /workspace/src ls-files --others --exclude-standard)"'
  # This run's instance only; [x]yz: the pattern does not match pgrep's own shell.
  check "no trampoline process left behind" bash -c '! pgrep -f "[t]rampoline.js push-tarball $1" >/dev/null' _ "$*"
  check "no receiver left running in the pod" poll 60 tramp shell "$@" -- sh -c '! pgrep -f "[p]ush-receive" >/dev/null'
  git reset -q --hard HEAD~1
  # The next push (back to the previous commit) works and leaves no switch half done.
  tramp push-tarball "$@" --quiet >/dev/null
  check "the next push brings HEAD's tree, no switch journal left" \
    test "$(tramp shell "$@" -- sh -c "$pushed_tree"' && test ! -e /workspace/.trees/.switch')" = "$(git rev-parse 'HEAD^{tree}')"
}

# Idle shutdown after the configured time, and never during a build.
idle_shutdown() {
  local work=$1 namespace=$2 name=$3
  local args=(--name "$name" -n "$namespace")
  tramp setup "${args[@]}" "${pod_options[@]}" --idle-timeout 20s --quiet >/dev/null ||
    { fail "setup of a second instance with a 20s idle timeout"; return 0; }
  tramp push-tarball "${args[@]}" --quiet >/dev/null || { fail "push to the idle-timeout instance"; return 0; }
  local started=$SECONDS code=0 elapsed
  # A 50 s build outlives the 20 s idle timeout: the pod must stay until it is done.
  tramp build "${args[@]}" -f slow.nix --remote-only -- --arg seconds 50 --argstr salt "$$" --quiet >/dev/null 2>"$work/idle-build.err" || code=$?
  elapsed=$((SECONDS - started))
  check "a build longer than the idle timeout completed (exit $code, ${elapsed}s$([[ $code == 0 ]] || echo ": $(grep -m1 trampoline: "$work/idle-build.err")"))" test "$code" = 0 -a "$elapsed" -ge 50
  local phase=""
  for _ in $(seq 1 60); do
    phase=$(tramp status "${args[@]}" --json | json_field 0.phase) || true
    [[ $phase == Stopped* || $phase == Succeeded ]] && break
    sleep 2
  done
  check "idle pod stopped itself after the build (phase: $phase)" grep -q -e Stopped -e Succeeded <<<"$phase"
  local status
  status=$(tramp status "${args[@]}" --json) || true
  check "status says why it stopped" grep -q 'idle' <<<"$status"
}
