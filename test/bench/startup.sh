#!/usr/bin/env bash
# test/bench/startup.sh: how fast the trampoline CLI starts, and what one command in the
# pod costs next to kubectl. Every number is a ratio against a baseline measured in the same
# run, back to back, on the same Node (test/bench/README.md, "Start-up"):
#
#   trampoline --version, --help   vs  node -e 0                    (no cluster needed)
#   peak RSS of trampoline --version (node -e 0's beside it)
#   trampoline shell -- true       vs  kubectl exec <pod> -c user -- true, same pod, peak RSS
#   trampoline-sh -c true          vs  kubectl exec <pod> -c user -- sh -c true (unchanged tree)
#   (each also without the mux helper: --no-mux, TRAMPOLINE_MUX=0)
#                                      (when KUBECONFIG reaches a cluster and kubectl is there)
#
# The CLI measured is the package as npm and Nix ship it: `npm run build`'s bundle, built
# into a temporary copy (bin/, dist/, container/, package.json, this checkout's node_modules
# linked), run on this checkout's pinned Node. The checkout itself (bin/trampoline.js on the
# TypeScript sources) is measured too, unless --no-sources.
#
# Usage:
#   test/bench/startup.sh [options]
#   KUBECONFIG=/path/to/kubeconfig test/bench/startup.sh [options]
#
# Options (environment variable and default in brackets):
#   --runs N            [BENCH_RUNS=11]         rounds per comparison (medians; at least 3)
#   --no-cluster        [BENCH_NO_CLUSTER=]     skip shell -- true even with a cluster
#   --no-sources                                skip the checkout's (sources) rows
#   --json                                      the full report as JSON on stdout
#   --name NAME         [BENCH_NAME=bench-startup-<pid>] instance name; must not exist yet
#   -n, --namespace NS  [BENCH_NAMESPACE=]      default: the kubeconfig context's
#   --image REF         [BENCH_IMAGE=localhost/trampoline:test]
#   --pull-policy P     [BENCH_PULL_POLICY=]    default: Never for localhost/ images
#   --cpu Q             [BENCH_CPU=50m]         pod requests: the pod only runs `true`
#   --memory Q          [BENCH_MEMORY=512Mi:4Gi]
#
# Needs: the npm dependencies (npm ci); /usr/bin/time (Debian: time) for peak RSS and CPU
# (optional); kubectl for the cluster pair. Progress on stderr; exit 0 when everything
# measured ran. The instance (own local state in a temporary XDG_STATE_HOME) and the
# temporary package are removed at exit, also on Ctrl-C.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
node_bin=$root/node_modules/.bin/node
# shellcheck source=test/bench/lib.sh
source "$root/test/bench/lib.sh"

runs=${BENCH_RUNS:-11}
no_cluster=${BENCH_NO_CLUSTER:-}
sources=1
json=""
name=${BENCH_NAME:-bench-startup-$$}
namespace=${BENCH_NAMESPACE:-}
image=${BENCH_IMAGE:-localhost/trampoline:test}
pull_policy=${BENCH_PULL_POLICY:-}
cpu=${BENCH_CPU:-50m}
memory=${BENCH_MEMORY:-512Mi:4Gi}

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit "${1:-2}"; }
need_value() { [[ $# -ge 2 && -n $2 ]] || { echo "startup.sh: $1 needs a value" >&2; usage; }; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) need_value "$@"; runs=$2; shift 2 ;;
    --no-cluster) no_cluster=1; shift ;;
    --no-sources) sources=""; shift ;;
    --json) json=1; shift ;;
    --name) need_value "$@"; name=$2; shift 2 ;;
    -n | --namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --image) need_value "$@"; image=$2; shift 2 ;;
    --pull-policy) need_value "$@"; pull_policy=$2; shift 2 ;;
    --cpu) need_value "$@"; cpu=$2; shift 2 ;;
    --memory) need_value "$@"; memory=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    *) echo "startup.sh: unknown option $1" >&2; usage ;;
  esac
done
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 3)) || { echo "startup.sh: --runs must be an integer >= 3 (got '$runs')" >&2; exit 2; }
[[ -z $pull_policy && $image == localhost/* ]] && pull_policy=Never

log() { printf '[startup] %s\n' "$*" >&2; }
[[ -x $node_bin ]] || { echo "startup.sh: $node_bin is missing: run npm ci in $root first" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/trampoline-startup.XXXXXX")
export XDG_STATE_HOME=$work/state
pkg=$work/package
created=""
common=(--name "$name")
[[ -n $namespace ]] && common+=(--namespace "$namespace")
tramp() { "$node_bin" "$pkg/bin/trampoline.js" "$@"; }

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  cd /
  if [[ -n $created ]]; then
    log "cleaning instance $name"
    local try
    for try in 1 2 3; do
      tramp clean "${common[@]}" --quiet >/dev/null 2>"$work/clean.err" && break
      if ((try == 3)); then
        cat "$work/clean.err" >&2
        log "warning: clean of $name failed; run: trampoline clean ${common[*]}"
      else
        sleep 5
      fi
    done
  fi
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the package, as npm pack would build it ------------------------------------------
log "building the package into $pkg"
build_package "$root" "$pkg" "$node_bin" || exit 1

args=(--package "$pkg" --runs "$runs")
[[ -n $sources ]] && args+=(--sources "$root")
[[ -n $json ]] && args+=(--json)
if [[ -n $sources && -e $root/dist/cli.js ]]; then
  log "warning: $root/dist exists, so the checkout's bin runs it, not the sources: its rows measure that build"
fi

# --- the instance, if there is a cluster ------------------------------------------------
if [[ -n $no_cluster ]]; then
  log "--no-cluster: start-up only"
elif ! command -v kubectl >/dev/null; then
  log "no kubectl: start-up only"
elif ! existing=$(tramp status "${common[@]}" --json 2>"$work/status.err"); then
  log "no cluster reachable (trampoline status: $(head -1 "$work/status.err")): start-up only"
elif [[ $existing != "[]" ]]; then
  echo "startup.sh: instance $name already exists; the benchmark only uses (and removes) an instance of its own: pick another --name" >&2
  exit 1
else
  created=1
  setup_args=(--image "$image" --cpu "$cpu" --memory "$memory" --idle-timeout 0 --no-default-cache)
  [[ -n $pull_policy ]] && setup_args+=(--pull-policy "$pull_policy")
  log "setup $name (${setup_args[*]})"
  (cd "$work" && tramp setup "${common[@]}" "${setup_args[@]}" --quiet >/dev/null)
  args+=(--name "$name" --pod "trampoline-$name")
  # A small repository the pod already has, for trampoline-sh -c true on an unchanged tree.
  repo=$work/repo
  mkdir -p "$repo" && git -C "$repo" init -q && echo bench >"$repo/README"
  git -C "$repo" add README && git -C "$repo" -c user.email=bench@trampoline -c user.name=bench commit -q -m bench
  if (cd "$repo" && env TRAMPOLINE_NAME="$name" ${namespace:+TRAMPOLINE_NAMESPACE="$namespace"} "$pkg/bin/trampoline-sh" -c true); then
    args+=(--repo "$repo")
  else
    log "trampoline-sh -c true failed in $repo: no sh rows"
  fi
  [[ -n $namespace ]] && args+=(--namespace "$namespace")
fi

"$node_bin" "$root/test/bench/startup.ts" "${args[@]}"
