#!/usr/bin/env bash
# test/bench/workspace.sh: what the workspace (a git work tree in the pod, pushed as git
# packs of the objects it lacks) costs, as ratios against baselines measured in the same
# run, on the same pod, back to back (no thresholds asserted; issue 12's targets printed
# beside them):
#
#   sh-edit   `trampoline-sh -c true` after a one-file edit  vs  the same with nothing changed
#             (the edit's push: one incremental pack, and the pod updates one file)  target <= 1.5
#   push-full a full first push (`push-tarball` into an empty workspace, wall clock)
#             vs  `git archive HEAD | kubectl exec -i <pod> -c user -- tar -x` into the
#             same volume (kubectl with the same kubeconfig)                        target <= 1.2
#
# in an N-file repository (--files, default 20000, of --file-bytes each, in 100 directories).
#
# Usage: KUBECONFIG=/path/to/kubeconfig test/bench/workspace.sh [options]
#   --files N        [BENCH_FILES=20000]
#   --file-bytes N   [BENCH_FILE_BYTES=1024]
#   --runs N         [BENCH_RUNS=5]        pairs per comparison (medians)
#   --json                                 the results as one JSON object on stdout
#   --name NAME      [BENCH_NAME=bench-ws-<pid>] instance name; must not exist yet
#   -n, --namespace NS [BENCH_NAMESPACE=]  default: the kubeconfig context's
#   --image REF      [BENCH_IMAGE=localhost/trampoline:test]
#   --pull-policy P  [BENCH_PULL_POLICY=]  default: Never for localhost/ images
#   --cpu Q          [BENCH_CPU=250m]
#   --memory Q       [BENCH_MEMORY=512Mi:4Gi]
# Needs kubectl for the baseline. The instance, its local state (a temporary
# XDG_STATE_HOME) and the repository are removed at exit, also on Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
source "$root/test/bench/lib.sh"
node_bin=$root/node_modules/.bin/node
files=${BENCH_FILES:-20000}
file_bytes=${BENCH_FILE_BYTES:-1024}
runs=${BENCH_RUNS:-5}
json=""
name=${BENCH_NAME:-bench-ws-$$}
namespace=${BENCH_NAMESPACE:-}
image=${BENCH_IMAGE:-localhost/trampoline:test}
pull_policy=${BENCH_PULL_POLICY:-}
cpu=${BENCH_CPU:-250m}
memory=${BENCH_MEMORY:-512Mi:4Gi}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit "${1:-2}"; }
need_value() { [[ $# -ge 2 && -n $2 ]] || { echo "workspace.sh: $1 needs a value" >&2; usage; }; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --files) need_value "$@"; files=$2; shift 2 ;;
    --file-bytes) need_value "$@"; file_bytes=$2; shift 2 ;;
    --runs) need_value "$@"; runs=$2; shift 2 ;;
    --json) json=1; shift ;;
    --name) need_value "$@"; name=$2; shift 2 ;;
    -n|--namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --image) need_value "$@"; image=$2; shift 2 ;;
    --pull-policy) need_value "$@"; pull_policy=$2; shift 2 ;;
    --cpu) need_value "$@"; cpu=$2; shift 2 ;;
    --memory) need_value "$@"; memory=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "workspace.sh: unknown option $1" >&2; usage ;;
  esac
done
[[ -z $pull_policy && $image == localhost/* ]] && pull_policy=Never
command -v kubectl >/dev/null || { echo "workspace.sh: kubectl is needed for the baseline" >&2; exit 1; }

say() { echo "bench-ws: $*" >&2; }
work=$(mktemp -d)
export XDG_STATE_HOME=$work/state
common=(--name "$name")
[[ -z $namespace ]] || common+=(-n "$namespace")
kns=()
[[ -z $namespace ]] || kns=(-n "$namespace")
tramp() { "$node_bin" "$root/bin/trampoline.js" "$@"; }
cleanup() {
  set +e
  (cd "$work/repo" 2>/dev/null && tramp clean "${common[@]}" --quiet >/dev/null 2>&1)
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the repository -------------------------------------------------------------------
say "making a repository of $files files of $file_bytes bytes"
bench_repo "$work/repo" "$files" "$file_bytes"
cd "$work/repo"

setup_args=("${common[@]}" --image "$image" --cpu "$cpu" --memory "$memory" --no-default-cache --idle-timeout 0)
[[ -z $pull_policy ]] || setup_args+=(--pull-policy "$pull_policy")
say "setup $name"
tramp setup "${setup_args[@]}" --quiet >/dev/null
pod=trampoline-$name

now() { echo "${EPOCHREALTIME/,/.}"; }
# elapsed START: seconds since START, 3 decimals.
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
in_pod() { kubectl "${kns[@]}" exec -i "$pod" -c user -- "$@"; }
empty_workspace() { in_pod sh -c 'rm -rf /workspace/src /workspace/bench-tar /workspace/.trees/pushed' >/dev/null; }

# --- full first push vs git archive | kubectl exec tar -x ----------------------------------
say "full first push vs git archive | kubectl exec -i ... tar -x ($runs pairs)"
push_times=() push_reported=() tar_times=()
for ((r = 0; r < runs; r++)); do
  empty_workspace
  start=$(now)
  git archive HEAD | in_pod sh -c 'mkdir -p /workspace/bench-tar && tar -x -C /workspace/bench-tar'
  tar_times+=("$(elapsed "$start")")
  empty_workspace
  rm -f "$XDG_STATE_HOME"/trampoline/*/*/"$name"/last-push
  start=$(now)
  out=$(tramp push-tarball "${common[@]}" --quiet --json)
  push_times+=("$(elapsed "$start")")
  push_reported+=("$("$node_bin" -e 'console.log(JSON.parse(process.argv[1]).seconds.toFixed(3))' "$out")")
  bytes=$("$node_bin" -e 'console.log(JSON.parse(process.argv[1]).bytes)' "$out")
done
tar_median=$(printf '%s\n' "${tar_times[@]}" | median)
push_median=$(printf '%s\n' "${push_times[@]}" | median)
reported_median=$(printf '%s\n' "${push_reported[@]}" | median)
in_pod rm -rf /workspace/bench-tar

# --- sh -c true after a one-file edit vs unchanged ---------------------------------------
say "trampoline-sh -c true: unchanged vs after a one-file edit ($runs pairs)"
export TRAMPOLINE_NAME=$name
[[ -z $namespace ]] || export TRAMPOLINE_NAMESPACE=$namespace
"$root/bin/trampoline-sh" -c true # the work tree is HEAD's: this records it
same_times=() edit_times=()
for ((r = 0; r < runs; r++)); do
  start=$(now)
  "$root/bin/trampoline-sh" -c true
  same_times+=("$(elapsed "$start")")
  echo "edit $r" >>d7/f7.txt
  start=$(now)
  "$root/bin/trampoline-sh" -c true
  edit_times+=("$(elapsed "$start")")
done
same_median=$(printf '%s\n' "${same_times[@]}" | median)
edit_median=$(printf '%s\n' "${edit_times[@]}" | median)
check=$(tramp shell "${common[@]}" -- tail -n 1 /workspace/src/d7/f7.txt)
[[ $check == "edit $((runs - 1))" ]] || say "warning: the pod's d7/f7.txt ends with '$check', not the last edit"

sh_ratio=$(ratio "$edit_median" "$same_median")
push_ratio=$(ratio "$push_median" "$tar_median")
reported_ratio=$(ratio "$reported_median" "$tar_median")
if [[ -n $json ]]; then
  printf '{"files":%s,"fileBytes":%s,"runs":%s,"packBytes":%s,"shUnchanged":%s,"shEdit":%s,"shRatio":%s,"pushFull":%s,"pushFullReported":%s,"archiveTar":%s,"pushRatio":%s,"pushReportedRatio":%s}\n' \
    "$files" "$file_bytes" "$runs" "$bytes" "$same_median" "$edit_median" "$sh_ratio" "$push_median" "$reported_median" "$tar_median" "$push_ratio" "$reported_ratio"
else
  printf '%-34s %10s %10s %7s %s\n' "what ($files files of $file_bytes B)" seconds baseline ratio target
  printf '%-34s %10s %10s %7s %s\n' "sh -c true after a one-file edit" "$edit_median" "$same_median" "$sh_ratio" "<= 1.5 (vs unchanged)"
  printf '%-34s %10s %10s %7s %s\n' "full first push (wall)" "$push_median" "$tar_median" "$push_ratio" "<= 1.2 (vs git archive | kubectl exec tar -x)"
  printf '%-34s %10s %10s %7s %s\n' "full first push (CLI's seconds)" "$reported_median" "$tar_median" "$reported_ratio" "(exec + upload + update only)"
  printf 'pack of the full push: %s bytes\n' "$bytes"
fi
