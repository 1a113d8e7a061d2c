#!/usr/bin/env bash
# The race check: the container suite and the end-to-end journey, each RUNS times in a
# row, while a CPU hog keeps every core busy. A check that passes only on a quiet machine
# fails here. Prints each run's closing line and ends with the plain summary line.
#
#   test/under-load.sh [RUNS [STAGE...]]   (default 3 runs of container and e2e; root, like ./test.sh)
set -uo pipefail
cd "$(dirname "$0")/.." || exit
runs=${1:-3}
stages=("${@:2}")
((${#stages[@]})) || stages=(container e2e)
hogs=()
stop_hogs() { for pid in "${hogs[@]}"; do kill "$pid" 2>/dev/null; done; wait 2>/dev/null; }
trap stop_hogs EXIT
# One busy loop per core, bounded so that a killed script cannot leave them behind long.
for _ in $(seq "$(nproc)"); do timeout 3h sh -c 'while :; do :; done' & hogs+=($!); done
passed=0 failed=0
for stage in "${stages[@]}"; do
  for run in $(seq "$runs"); do
    log=$(mktemp)
    ./test.sh "$stage" >"$log" 2>&1
    code=$?
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    echo "$stage run $run under load: ${line:-no summary} (exit $code)"
    grep -E '^FAIL' "$log" | sed 's/^/  /'
    if [ "$code" = 0 ]; then
      passed=$((passed + 1))
      rm -f "$log"
    else
      failed=$((failed + 1))
      # The whole output of a failed run, for finding out why.
      kept=${TMPDIR:-/tmp}/under-load-$stage-$run.log
      mv "$log" "$kept" && echo "  (full output: $kept)"
    fi
  done
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
