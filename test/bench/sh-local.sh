#!/usr/bin/env bash
# test/bench/sh-local.sh: the sh adapter's local steps, without a cluster: what
# `trampoline-sh -c CMD` does on the laptop before its exec, after a one-file edit against
# with nothing changed, in an N-file repository (100 directories), as pairs measured back
# to back in the same run. Each run is its own node process (start, the modules sh.ts
# loads, the work tree's tree); an edit adds the framed push's pack (scripts/workspace/
# framed.ts). Wall clock and CPU (user + sys, git's processes included), medians.
#
# Usage: test/bench/sh-local.sh [--files N] [--runs N]   [BENCH_FILES=20000, BENCH_RUNS=7]
# Needs git and the checkout's node_modules. The repository lives in a temporary
# directory, removed at exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
source "$root/test/bench/lib.sh"
node_bin=$root/node_modules/.bin/node
files=${BENCH_FILES:-20000}
runs=${BENCH_RUNS:-7}
while [[ $# -gt 0 ]]; do
  case $1 in
    --files) files=${2:?--files needs a value}; shift 2 ;;
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "sh-local.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "bench-sh-local: making a repository of $files files" >&2
repo=$work/repo
bench_repo "$repo" "$files" 1024
cd "$repo"

# One run: MODE same (the tree as last pushed) or edit (the framed push's pack as well).
cat >"$work/run.mjs" <<EOF
const { enableCompileCache } = await import('node:module')
enableCompileCache?.()
const scripts = '$root/scripts'
const [git] = await Promise.all([import(scripts + '/git.ts'), import(scripts + '/mux/client.ts'), import(scripts + '/mux/target.ts'), import(scripts + '/workspace/record.ts')])
const source = await git.pushSource('$repo', 'worktree')
if (process.argv[2] === 'edit') {
  const { prepareFramed } = await import(scripts + '/workspace/framed.ts')
  const last = { tree: process.env.LAST_TREE, commit: process.env.LAST_COMMIT }
  const framed = await prepareFramed('$repo', source, last, { command: ['true'], stdin: process.stdin, stdout: process.stdout, stderr: process.stderr })
  if (!framed || framed.objects < 2) throw new Error('no pack for the edit')
}
EOF
export LAST_TREE LAST_COMMIT
LAST_TREE=$(git rev-parse 'HEAD^{tree}') LAST_COMMIT=$(git rev-parse HEAD)
echo "edit" >>d7/f7.txt
"$node_bin" "$work/run.mjs" edit </dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; } # warms the compile cache

measure() {
  local times real user sys
  times=$( { TIMEFORMAT='%3R %3U %3S'; time "$node_bin" "$work/run.mjs" "$1" </dev/null >/dev/null 2>"$work/err"; } 2>&1) ||
    { cat "$work/err" >&2; exit 1; }
  read -r real user sys <<<"$times"
  echo "$((10#${real/./})) $((10#${user/./} + 10#${sys/./}))" >>"$work/$1"
}
for ((r = 0; r < runs; r++)); do measure same; measure edit; done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
sw=$(cut -d' ' -f1 "$work/same" | median) ew=$(cut -d' ' -f1 "$work/edit" | median)
sc=$(cut -d' ' -f2 "$work/same" | median) ec=$(cut -d' ' -f2 "$work/edit" | median)
echo "the sh adapter's local steps in $files files, medians of $runs (ms; cpu = user + sys)"
printf '%-10s %8s %8s\n' case wall cpu unchanged "$sw" "$sc" edit "$ew" "$ec"
printf '%-10s %8s %8s\n' ratio "$(awk -v a="$ew" -v b="$sw" 'BEGIN { printf "%.2f", a / b }')" "$(awk -v a="$ec" -v b="$sc" 'BEGIN { printf "%.2f", a / b }')"
