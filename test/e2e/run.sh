# shellcheck shell=bash disable=SC2154 # $root, $node_bin: test.sh
# The cluster stages of test.sh (e2e_stage, run_bench) and what the journeys share beyond
# test/lib.sh: `tramp` (this checkout's CLI on the pinned node) and journey_arg. Sources
# the cluster choice, the main journey and every test/e2e/<name>.sh journey.

tramp() { "$node_bin" "$root/bin/trampoline.js" "$@"; }
# journey_arg FLAG ARGS...: the value following FLAG (or --namespace for -n) in a journey's
# common arguments (--name X -n Y), for the e2e files that take them as "$@".
journey_arg() {
  local want=$1
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      "$want") echo "${2:-}"; return ;;
      --namespace) [ "$want" = -n ] && { echo "${2:-}"; return; } ;;
    esac
    shift
  done
}

# shellcheck source=test/e2e/cluster.sh
source "$root/test/e2e/cluster.sh"
# shellcheck source=test/e2e/main.sh
source "$root/test/e2e/main.sh"
# shellcheck source=test/e2e/agent.sh
source "$root/test/e2e/agent.sh"
# shellcheck source=test/e2e/faults.sh
source "$root/test/e2e/faults.sh"
# shellcheck source=test/e2e/escape.sh
source "$root/test/e2e/escape.sh"
# shellcheck source=test/e2e/cache.sh
source "$root/test/e2e/cache.sh"
# shellcheck source=test/e2e/rbac.sh
source "$root/test/e2e/rbac.sh"
# shellcheck source=test/e2e/registry.sh
source "$root/test/e2e/registry.sh"
# shellcheck source=test/e2e/roundtrip.sh
source "$root/test/e2e/roundtrip.sh"
# shellcheck source=test/e2e/workspace.sh
source "$root/test/e2e/workspace.sh"
# shellcheck source=test/e2e/sessions.sh
source "$root/test/e2e/sessions.sh"
# shellcheck source=test/e2e/mux.sh
source "$root/test/e2e/mux.sh"
# shellcheck source=test/e2e/farm.sh
source "$root/test/e2e/farm.sh"

# Benchmarks: ratios against baselines measured in the same run (test/bench/README.md).
run_bench() {
  choose_cluster
  provide_image
  trap 'cd "$root"; release_cluster' EXIT
  BENCH_IMAGE=$test_image test/bench/run.sh
  BENCH_IMAGE=$test_image test/bench/startup.sh
  local extra
  for extra in test/bench/workspace.sh test/bench/farm.sh; do
    [[ ! -x $extra ]] || BENCH_IMAGE=$test_image "$extra"
  done
}

e2e_stage() { run_e2e; summary; }
