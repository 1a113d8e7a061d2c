#!/usr/bin/env bash
# The project's standard test: unit tests, the in-pod scripts against real programs, then
# the whole user journey against a real Kubernetes cluster, checking each step's result.
#
# This file is the dispatcher: the stages below, the cluster lock, the final summary. The
# checks' helpers are test/lib.sh; the end-to-end journey is test/e2e/ (run.sh).
#
#   ./test.sh            everything
#   ./test.sh lint       shellcheck over every shell script (also `nix flake check`)
#   ./test.sh unit       typecheck + unit tests only
#   ./test.sh install    the npm package: pack, global install, run from another directory
#   ./test.sh container  in-pod scripts with a real nix-daemon and sshd (root)
#   ./test.sh e2e        the end-to-end journey only
#   ./test.sh bench      transfer benchmarks on the same cluster choice (numbers, no asserts)
#
# Cluster choice for e2e, in order: the cluster your kubeconfig points at (if it answers),
# minikube (started if installed), else the local cluster from test/local-cluster/.
# TRAMPOLINE_TEST_CLUSTER=kubeconfig|minikube|local forces one.
# TRAMPOLINE_E2E_ONLY=faults,workspace runs only setup and those journeys (fault_journey,
# workspace_journey: test/e2e/*.sh), to iterate on them; the full e2e is the default.
# Runs that use a cluster (e2e, bench, all) queue on one lock (/tmp/trampoline-e2e.lock):
# two journeys on one small cluster would starve or clean up each other.
set -euo pipefail
cd "$(dirname "$0")"
root=$PWD

what=${1:-all}
if [[ $what == @(e2e|bench|all) && -z ${TRAMPOLINE_E2E_LOCKED:-} ]] && command -v flock >/dev/null; then
  # flock -o: the lock is held by flock itself, never by a leftover background process.
  flock -n /tmp/trampoline-e2e.lock true 2>/dev/null || echo "==> waiting for another run's cluster lock (/tmp/trampoline-e2e.lock)" >&2
  exec flock -o /tmp/trampoline-e2e.lock env TRAMPOLINE_E2E_LOCKED=1 "$root/test.sh" "$@"
fi
# shellcheck source=test/lib.sh
source "$root/test/lib.sh"

install_node_deps() {
  # Already installed from this very lockfile: npm ci would only delete and rewrite
  # node_modules under whatever else is running from it.
  if cmp -s package-lock.json node_modules/.trampoline-installed-lock 2>/dev/null; then return 0; fi
  log "installing npm dependencies (pinned Node comes with them)"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.trampoline-installed-lock
}

node_bin=$root/node_modules/.bin/node
# shellcheck source=test/e2e/run.sh
source "$root/test/e2e/run.sh"

# --- stages ------------------------------------------------------------------------
# Each stage runs in its own shell, so one that fails (or aborts) does not hide whether
# the others pass. Its counts come from its own closing line; a stage that ends without
# one, or exits non-zero with no failure counted, is one failure of its own.
total_passed=0
total_failed=0
stage_report=()
# The failed checks' names again at the end: a long log may reach a reader cut short.
failed_checks=()
run_stage() {
  local name=$1 fn=$2 log code=0 line p f failed
  log=$(mktemp)
  set +e
  ( set -euo pipefail; "$fn" ) 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  set -e
  line=$(grep -E '^[A-Za-z]*:? ?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
  while IFS= read -r failed; do failed_checks+=("$name: ${failed#"${failed%%[![:space:]]*}"}"); done \
    < <(grep -E '^ *FAIL ' "$log" | head -n 30 || true)
  rm -f "$log"
  p=0 f=0
  if [[ $line =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then p=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]}; fi
  if [[ $code != 0 && $f == 0 ]]; then f=1; fi
  [[ -n $line || $code != 0 ]] || p=$((p + 1))
  total_passed=$((total_passed + p)) total_failed=$((total_failed + f))
  stage_report+=("$(printf '%-10s %s passed, %s failed (exit %s)' "$name" "$p" "$f" "$code")")
}

# The unit stage: typecheck and the shell library's self-test count as one check each,
# vitest's own totals follow.
unit_stage() {
  local json code=0 failed=0
  log "typecheck"
  npx tsc --noEmit || failed=$((failed + 1))
  log "the shell test library (test/lib.test.sh)"
  bash test/lib.test.sh || failed=$((failed + 1))
  log "unit tests"
  json=$(mktemp)
  npx vitest run --reporter=default --reporter=json --outputFile="$json" || code=$?
  "$node_bin" -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const f=+process.argv[2];console.log(`unit: ${r.numPassedTests+2-f} passed, ${r.numFailedTests+f} failed`)' "$json" "$failed" || true
  rm -f "$json"
  [[ $code == 0 && $failed == 0 ]]
}
lint_stage() { bash test/lint.sh; }
# The npm package as users get it: packed, installed globally, run elsewhere on this Node.
install_stage() { bash test/install.sh; }

run_container() {
  log "in-pod scripts against a real nix-daemon and sshd"
  bash container/tests/run.sh
}

finish() {
  echo
  echo "==> stages"
  printf '  %s\n' "${stage_report[@]}"
  if ((${#failed_checks[@]})); then
    echo "==> failed checks"
    printf '  %s\n' "${failed_checks[@]}"
  fi
  echo "$total_passed passed, $total_failed failed"
  [[ $total_failed == 0 ]]
}

case $what in
  unit) install_node_deps; run_stage unit unit_stage; finish ;;
  container) run_stage container run_container; finish ;;
  install) run_stage install install_stage; finish ;;
  lint) run_stage lint lint_stage; finish ;;
  e2e) install_node_deps; run_stage e2e e2e_stage; finish ;;
  bench) install_node_deps; run_bench ;;
  all)
    install_node_deps
    run_stage lint lint_stage
    run_stage unit unit_stage
    run_stage install install_stage
    run_stage container run_container
    run_stage e2e e2e_stage
    finish
    ;;
  *) echo "usage: $0 [all|lint|unit|install|container|e2e|bench]" >&2; exit 2 ;;
esac
