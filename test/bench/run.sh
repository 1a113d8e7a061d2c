#!/usr/bin/env bash
# test/bench/run.sh: trampoline's transfer benchmark against a real cluster. It creates
# its own instance (and its own local state under a temporary directory), measures, prints a
# table (or --json) on stdout, and always cleans the instance and what it made up at exit.
# Every number is a ratio against a baseline measured in the same run on the same pod
# (see test/bench/README.md for what each one means and the last results):
#
#   push-tarball, big incompressible files  vs  raw exec channel (same bytes into cat >/dev/null)
#   push-tarball, many small files          vs  raw exec channel (same bytes)
#   peak RSS of the CLI during the big push vs  payload size (and a trivial command's RSS)
#   copy-closure to the pod, and --from     vs  raw exec up/download of the same bytes (fresh store
#                                               paths each run: input-addressed, as build outputs
#                                               are, and content-addressed, as sources are)
#   push-tarball with nothing new           vs  shell -- true
#   push-tarball, whole command             vs  git archive | kubectl exec -i -- tar -x, and
#                                               the original nix-trampoline method (git archive
#                                               to a file, kubectl cp, tar -x)   (with kubectl)
#   shell -- true                           vs  kubectl exec POD -c user -- true  (with kubectl)
#
# Usage:
#   KUBECONFIG=/path/to/kubeconfig test/bench/run.sh [options]
#
# Options (environment variable and default in brackets):
#   --mib N             [BENCH_MIB=256]         incompressible data in the big-file repository
#   --file-mib N        [BENCH_FILE_MIB=64]     ...split into files of this many MiB
#   --files N           [BENCH_FILES=20000]     files in the small-file repository
#   --file-bytes N      [BENCH_FILE_BYTES=1024] size of each small file
#   --closure-mib N     [BENCH_CLOSURE_MIB=64]  data per copy-closure run (local nix needed)
#   --closure-paths N   [BENCH_CLOSURE_PATHS=8] ...in this many store paths
#   --repeat N          [BENCH_REPEAT=3]        runs per measurement (medians are reported)
#   --noop-repeat N     [BENCH_NOOP_REPEAT=5]   runs of the cheap no-op comparison
#   --chunk-kib N       [BENCH_CHUNK_KIB=64]    write size of the raw baseline (a pipe gives 64)
#   --skip LIST         [BENCH_SKIP=]           comma-separated: big, small, copy
#   --json                                      the full report as JSON on stdout
#   --name NAME         [BENCH_NAME=bench-<pid>] instance name; must not exist yet
#   -n, --namespace NS  [BENCH_NAMESPACE=]      default: the kubeconfig context's
#   --image REF         [BENCH_IMAGE=localhost/trampoline:test]
#   --pull-policy P     [BENCH_PULL_POLICY=]    default: Never for localhost/ images
#   --cpu Q             [BENCH_CPU=250m:]       the daemon's CPU: a small request on a shared node,
#                                               and no limit, as setup's default (a limit throttles
#                                               every Nix step of a copy; the raw exec has none)
#   --memory Q          [BENCH_MEMORY=512Mi:4Gi]
#   --keep                                      leave the instance (prints how to clean it)
#   --sources                                   run the checkout's TypeScript sources instead of
#                                               the package's build (what npm and Nix ship)
#
# Needs: the npm dependencies (npm ci), git, GNU tar/coreutils; kubectl for its baselines
# (skipped without it); nix-store and nix for the
# copy-closure part (skipped without them); /usr/bin/time (Debian: time) for the
# whole-process-tree RSS (optional). Progress goes to stderr. Exit 0 when every
# measurement ran; the numbers are for reading, nothing here asserts on them.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
node_bin=$root/node_modules/.bin/node
# shellcheck source=test/bench/lib.sh
source "$root/test/bench/lib.sh"

mib=${BENCH_MIB:-256}
file_mib=${BENCH_FILE_MIB:-64}
files=${BENCH_FILES:-20000}
file_bytes=${BENCH_FILE_BYTES:-1024}
closure_mib=${BENCH_CLOSURE_MIB:-64}
closure_paths=${BENCH_CLOSURE_PATHS:-8}
repeat=${BENCH_REPEAT:-3}
noop_repeat=${BENCH_NOOP_REPEAT:-5}
chunk_kib=${BENCH_CHUNK_KIB:-64}
skip=${BENCH_SKIP:-}
json=""
name=${BENCH_NAME:-bench-$$}
namespace=${BENCH_NAMESPACE:-}
image=${BENCH_IMAGE:-localhost/trampoline:test}
pull_policy=${BENCH_PULL_POLICY:-}
cpu=${BENCH_CPU:-250m:}
memory=${BENCH_MEMORY:-512Mi:4Gi}
keep=""
sources=""

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit "${1:-2}"; }
need_value() { [[ $# -ge 2 && -n $2 ]] || { echo "run.sh: $1 needs a value" >&2; usage; }; }
while [[ $# -gt 0 ]]; do
  case $1 in
    --mib) need_value "$@"; mib=$2; shift 2 ;;
    --file-mib) need_value "$@"; file_mib=$2; shift 2 ;;
    --files) need_value "$@"; files=$2; shift 2 ;;
    --file-bytes) need_value "$@"; file_bytes=$2; shift 2 ;;
    --closure-mib) need_value "$@"; closure_mib=$2; shift 2 ;;
    --closure-paths) need_value "$@"; closure_paths=$2; shift 2 ;;
    --repeat) need_value "$@"; repeat=$2; shift 2 ;;
    --noop-repeat) need_value "$@"; noop_repeat=$2; shift 2 ;;
    --chunk-kib) need_value "$@"; chunk_kib=$2; shift 2 ;;
    --skip) need_value "$@"; skip=$2; shift 2 ;;
    --json) json=1; shift ;;
    --name) need_value "$@"; name=$2; shift 2 ;;
    -n | --namespace) need_value "$@"; namespace=$2; shift 2 ;;
    --image) need_value "$@"; image=$2; shift 2 ;;
    --pull-policy) need_value "$@"; pull_policy=$2; shift 2 ;;
    --cpu) need_value "$@"; cpu=$2; shift 2 ;;
    --memory) need_value "$@"; memory=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --sources) sources=1; shift ;;
    -h | --help) usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
  esac
done
for v in mib file_mib files file_bytes closure_mib closure_paths repeat noop_repeat chunk_kib; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: ${v//_/-} must be a positive integer (got '${!v}')" >&2; exit 2; }
done
skipped() { [[ ,$skip, == *",$1,"* ]]; }
[[ -z $pull_policy && $image == localhost/* ]] && pull_policy=Never

log() { printf '[bench] %s\n' "$*" >&2; }
[[ -x $node_bin ]] || { echo "run.sh: $node_bin is missing: run npm ci in $root first" >&2; exit 1; }
command -v git >/dev/null || { echo "run.sh: git is needed" >&2; exit 1; }
if ! skipped copy && ! { command -v nix-store >/dev/null && command -v nix >/dev/null; }; then
  log "no local nix (nix-store, nix): skipping copy-closure"
  skip=$skip,copy
fi

common=(--name "$name")
[[ -n $namespace ]] && common+=(--namespace "$namespace")

work=$(mktemp -d "${TMPDIR:-/tmp}/trampoline-bench.XXXXXX")
cli=$root/bin/trampoline.js
if [[ -z $sources ]]; then
  log "building the package (the bundle npm and Nix ship) into $work/package"
  build_package "$root" "$work/package" "$node_bin" || exit 1
  cli=$work/package/bin/trampoline.js
elif [[ -e $root/dist/cli.js ]]; then
  log "warning: $root/dist exists, so the checkout's bin runs it, not the sources"
fi
tramp() { "$node_bin" "$cli" "$@"; }
# Our own local state (keys, ssh_config, last push): nothing of the user's is read or changed.
export XDG_STATE_HOME=$work/state
created=""
nix_paths=$work/nix-paths
: >"$nix_paths"

cleanup() {
  local code=$?
  trap - EXIT INT TERM
  cd /
  if [[ -n $created ]]; then
    if [[ -n $keep ]]; then
      log "kept instance $name; remove it with: XDG_STATE_HOME=$work/state $node_bin $root/bin/trampoline.js clean ${common[*]}"
    else
      log "cleaning instance $name"
      local try
      for try in 1 2 3 4; do
        tramp clean "${common[@]}" --quiet >/dev/null 2>"$work/clean.err" && break
        if ((try == 4)); then
          cat "$work/clean.err" >&2
          log "warning: clean of $name failed; run: trampoline clean ${common[*]}"
        else
          sleep 5
        fi
      done
    fi
  fi
  # The store paths this run added locally (nothing roots them), and only those.
  if [[ -s $nix_paths ]]; then
    xargs nix-store --delete <"$nix_paths" >/dev/null 2>&1 || log "warning: could not delete some local store paths listed in $nix_paths"
  fi
  [[ -n $keep ]] || rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

git_commit() { git -C "$1" -c user.email=bench@trampoline -c user.name=bench commit -q -m "$2"; }

# --- the data --------------------------------------------------------------------

big_repo=""
if ! skipped big; then
  big_repo=$work/big
  log "big-file repository: $mib MiB of /dev/urandom in files of up to $file_mib MiB"
  mkdir -p "$big_repo/data"
  git -C "$big_repo" init -q
  left=$mib
  i=0
  while ((left > 0)); do
    size=$((left < file_mib ? left : file_mib))
    head -c $((size * 1024 * 1024)) /dev/urandom >"$big_repo/data/blob-$i.bin"
    left=$((left - size))
    i=$((i + 1))
  done
  git -C "$big_repo" add -A
  git_commit "$big_repo" "$mib MiB of random data"
fi

small_repo=""
if ! skipped small; then
  small_repo=$work/small
  log "small-file repository: $files files of $file_bytes bytes"
  git -C "$work" init -q small
  per_dir=500
  d=0
  left=$files
  while ((left > 0)); do
    n=$((left < per_dir ? left : per_dir))
    mkdir -p "$small_repo/src/d$d"
    head -c $((n * file_bytes)) /dev/urandom | split -b "$file_bytes" -a 4 -d - "$small_repo/src/d$d/f"
    left=$((left - n))
    d=$((d + 1))
  done
  git -C "$small_repo" add -A
  git_commit "$small_repo" "$files small files"
fi

closures=""
if ! skipped copy; then
  closures=$work/closures
  : >"$closures"
  per_path=$((closure_mib * 1024 * 1024 / closure_paths))
  log "store paths for copy-closure: $repeat runs x (2 x $closure_paths paths of $per_path bytes, input- and content-addressed, + 1 tiny path), fresh data each run"
  mkdir -p "$work/nix"
  # add_path PROTOCOL KIND RUN FILE: the file into the local store, listed for bench.ts and
  # cleanup. Kind data is input-addressed, as build outputs are (nix-store --add makes a
  # content-addressed path; its export, renamed, is imported without the address); the
  # others stay content-addressed, as sources are.
  add_path() {
    local path added
    # (Debian's nix-bin warns about the missing nixbld group on every call: keep it quiet.)
    path=$(nix-store --add "$4" 2>"$work/nix.err") || { cat "$work/nix.err" >&2; exit 1; }
    echo "$path" >>"$nix_paths"
    if [[ $2 == data ]]; then
      added=$(nix-store --export "$path" 2>"$work/nix.err" | "$node_bin" "$root/test/bench/rename-export.ts" "$path" |
        nix-store --import 2>>"$work/nix.err") || { cat "$work/nix.err" >&2; exit 1; }
      nix-store --delete "$path" >/dev/null 2>&1 || true
      path=$added
      echo "$path" >>"$nix_paths"
    fi
    echo "$1 $2 $3 $(nix-store -q --size "$path" 2>"$work/nix.err") $path" >>"$closures"
    rm -f "$4"
  }
  # (The first column once named the protocol; copy-closure to the pod no longer has one.)
  for run in $(seq 1 "$repeat"); do
    head -c 1024 /dev/urandom >"$work/nix/bench-$run-tiny"
    add_path ssh-ng tiny "$run" "$work/nix/bench-$run-tiny"
    for kind in data data-ca; do
      for k in $(seq 1 "$closure_paths"); do
        head -c "$per_path" /dev/urandom >"$work/nix/bench-$run-$kind-$k"
        add_path ssh-ng "$kind" "$run" "$work/nix/bench-$run-$kind-$k"
      done
    done
  done
fi

# --- the instance ----------------------------------------------------------------

existing=$(tramp status "${common[@]}" --json) || { echo "run.sh: trampoline status failed (see above): is KUBECONFIG set and the cluster up?" >&2; exit 1; }
if [[ $existing != "[]" ]]; then
  echo "run.sh: instance $name already exists; the benchmark only uses (and removes) an instance of its own: pick another --name" >&2
  exit 1
fi
created=1
setup_args=(--image "$image" --cpu "$cpu" --memory "$memory" --idle-timeout 0)
[[ -n $pull_policy ]] && setup_args+=(--pull-policy "$pull_policy")
log "setup $name (${setup_args[*]})"
(cd "$work" && tramp setup "${common[@]}" "${setup_args[@]}" --quiet >/dev/null)

# --- measure -----------------------------------------------------------------------

bench_args=(--cli "$cli" --name "$name" --repeat "$repeat" --noop-repeat "$noop_repeat" --chunk-kib "$chunk_kib")
[[ -n $namespace ]] && bench_args+=(--namespace "$namespace")
[[ -n $big_repo ]] && bench_args+=(--big-repo "$big_repo")
[[ -n $small_repo ]] && bench_args+=(--small-repo "$small_repo")
[[ -n $closures ]] && bench_args+=(--closures "$closures")
[[ -n $json ]] && bench_args+=(--json)
"$node_bin" "$root/test/bench/bench.ts" "${bench_args[@]}"
