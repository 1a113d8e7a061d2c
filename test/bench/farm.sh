#!/usr/bin/env bash
# test/bench/farm.sh: the build farm (setup --workers N) against one instance alone. On a
# 2-core node CPU cannot scale, so every derivation sleeps (test/e2e/farm.nix): what scales
# is the number of build slots, and what the farm costs is its per-derivation overhead.
#
#   wall-W        8 independent 5-s derivations with W = 0, 1, 2, 4 workers (100m each,
#                 1 build slot each; the main pod keeps its own 1 slot): wall seconds of
#                 `trampoline build`, and the ratio to W = 0 (the ideal is 8/(W+1) slots'
#                 worth: ceil(8/(W+1))/8)
#   overhead      per-derivation cost of building remotely: 4 fresh 0-s derivations in a row
#                 on one worker (client --max-jobs 0: nothing local) minus the same locally,
#                 divided by 4 (ssh connection, Nix handshake, copying the tiny input and
#                 output; the input is already on the worker from the runs before)
#   copy          `nix copy` from the main daemon to a worker over the farm's ssh-ng (what
#                 the build hook does for inputs, and in reverse for outputs): a 1-byte
#                 path (fixed cost) and a fresh 64 MiB one: the main daemon's copy rate,
#                 the term that bounds a farm (README: farm size)
#
# Usage: KUBECONFIG=... test/bench/farm.sh [--repeat N] [--keep]
#   BENCH_IMAGE (localhost/trampoline:test), BENCH_NAMESPACE, BENCH_NAME (bench-farm-<pid>)
# Progress on stderr, the table on stdout. The instance and its local state go at exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
node_bin=$root/node_modules/.bin/node
image=${BENCH_IMAGE:-localhost/trampoline:test}
name=${BENCH_NAME:-bench-farm-$$}
namespace=${BENCH_NAMESPACE:-}
repeat=${BENCH_REPEAT:-1}
keep=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --repeat) repeat=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "farm.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
pull=()
[[ $image == localhost/* ]] && pull=(--pull-policy Never)
args=(--name "$name")
[[ -n $namespace ]] && args+=(-n "$namespace")
# No CPU limit on the main daemon: its copying and ssh are what is measured (the bench runs
# alone, under test.sh's cluster lock or by hand).
pod_opts=(--image "$image" "${pull[@]}" --cpu 500m: --memory 512Mi:4Gi --no-default-cache --idle-timeout 0)
farm_opts=(--worker-cpu 100m: --worker-memory 128Mi:2Gi)

work=$(mktemp -d /tmp/trampoline-bench-farm.XXXXXX)
export XDG_STATE_HOME=$work/state
tramp() { "$node_bin" "$root/bin/trampoline.js" "$@"; }
cleanup() {
  cd /
  [[ -n $keep ]] || tramp clean "${args[@]}" >/dev/null 2>&1 || echo "farm.sh: could not clean instance $name" >&2
  rm -rf "$work"
}
trap cleanup EXIT
log() { printf '==> %s\n' "$*" >&2; }

mkdir -p "$work/project"
cp "$root/test/e2e/farm.nix" "$work/project/"
cd "$work/project"
git init -q && git add farm.nix && git -c user.email=bench@trampoline -c user.name=bench commit -qm bench

log "setup $name"
tramp setup "${args[@]}" "${pod_opts[@]}" >/dev/null
tramp push-tarball "${args[@]}" >/dev/null

# seconds BUILD-ARGS...: wall seconds of one `trampoline build` (fails the bench if it fails).
seconds() {
  local start end
  start=$(date +%s.%N)
  tramp build "${args[@]}" -f farm.nix --remote-only "$@" >/dev/null 2>"$work/build.err" || { tail -n 5 "$work/build.err" >&2; return 1; }
  end=$(date +%s.%N)
  "$node_bin" -e 'console.log((process.argv[2]-process.argv[1]).toFixed(2))' "$start" "$end"
}
median() { "$node_bin" -e 'const v=process.argv.slice(1).map(Number).sort((a,b)=>a-b);console.log(v[Math.floor(v.length/2)].toFixed(2))' "$@"; }
scale() {
  log "setup --workers $1"
  tramp setup "${args[@]}" "${pod_opts[@]}" --workers "$1" "${farm_opts[@]}" >/dev/null 2>"$work/setup.err" || { tail -n 5 "$work/setup.err" >&2; return 1; }
}

eight=(d1 d2 d3 d4 d5 d6 d7 d8)
declare -A wall
for w in 0 1 2 4; do
  scale "$w"
  runs=()
  for ((r = 0; r < repeat; r++)); do
    runs+=("$(seconds "${eight[@]}" -- --argstr salt "w$w-$r-$$-$RANDOM" --arg count 8 --arg seconds 5)")
  done
  wall[$w]=$(median "${runs[@]}")
  log "  8 x 5 s with $w workers: ${wall[$w]} s (median of: ${runs[*]})"
done

log "overhead: 4 x 0-s derivations on one worker vs locally"
scale 1
# The input (busybox) reaches the worker once; the runs above already copied it.
remote=$(seconds d1 d2 d3 d4 -- --argstr salt "ovr-$$-$RANDOM" --arg count 4 --arg seconds 0 --max-jobs 0)
local_=$(seconds d1 d2 d3 d4 -- --argstr salt "ovl-$$-$RANDOM" --arg count 4 --arg seconds 0 --builders '')
overhead=$("$node_bin" -e 'console.log(((process.argv[1]-process.argv[2])/4).toFixed(2))' "$remote" "$local_")

log "copy: the main daemon's ssh-ng channel to a worker (nix copy, as its build hook copies)"
# In the nix-daemon container as root, with the farm's key, pinned host key and ssh config:
# a 1-byte path (the fixed cost of a copy: ssh, handshake) and a fresh 64 MiB one.
copy_script='set -e
read -r uri _ key _ _ _ _ pinned < /run/trampoline-farm/machines
export NIX_SSHOPTS="-F /run/trampoline-farm/ssh_config"
store="$uri?ssh-key=$key&base64-ssh-public-host-key=$pinned"
t() { local s e; s=$(date +%s%N); nix --extra-experimental-features nix-command copy --to "$store" "$1" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
d=$(mktemp -d)
printf x > "$d/tiny-$1"; head -c 67108864 /dev/urandom > "$d/big-$1"
tiny=$(nix-store --add "$d/tiny-$1"); big=$(nix-store --add "$d/big-$1"); rm -rf "$d"
echo "$(t "$tiny") $(t "$big")"
nix-store --delete "$tiny" "$big" >/dev/null 2>&1 || true'
ns_args=()
[[ -n $namespace ]] && ns_args=(-n "$namespace")
read -r tiny_ms big_ms < <(kubectl exec "${ns_args[@]}" "trampoline-$name" -c nix-daemon -- bash -c "$copy_script" _ "$$-$RANDOM")
rate=$("$node_bin" -e 'const [t,b]=process.argv.slice(1).map(Number); console.log(b>t?(64/((b-t)/1000)).toFixed(0):"inf")' "$tiny_ms" "$big_ms")

printf '%-10s %10s %10s %12s\n' workers wall-s ratio ideal
for w in 0 1 2 4; do
  "$node_bin" -e 'const [w,t,t0]=process.argv.slice(1).map(Number); const ideal=Math.ceil(8/(w+1))/8; console.log(`${String(w).padEnd(10)} ${t.toFixed(2).padStart(10)} ${(t/t0).toFixed(2).padStart(10)} ${ideal.toFixed(2).padStart(12)}`)' "$w" "${wall[$w]}" "${wall[0]}"
done
echo "remote overhead per derivation: ${overhead} s (4 x 0-s derivations: remote ${remote} s, local ${local_} s)"
echo "nix copy main -> worker: 1-byte path ${tiny_ms} ms, 64 MiB path ${big_ms} ms -> ${rate} MiB/s beyond the fixed cost"
