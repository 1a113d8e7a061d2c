#!/usr/bin/env bash
# test/bench/receive.sh: the pod's side of an agent's edit, without a cluster. What
# `trampoline-sh -c CMD` costs in the pod after a one-file edit (push-receive.sh receive
# --framed of the edit's pack, then CMD) against what it costs with nothing changed (CMD
# alone: the sh adapter then sends no pack), in an N-file repository (100 directories),
# as pairs measured back to back in the same run. Wall clock and CPU (user + sys of the
# whole process tree: the pod's CPU limit turns CPU into wall time) are both reported,
# medians; with strace, also the processes a receive starts.
#
# Usage: test/bench/receive.sh [options] [SCRIPT...]
#   SCRIPT             push-receive.sh versions to compare, in the same run, each in its own
#                      workspace receiving the same packs (default: container/push-receive.sh;
#                      e.g. `git show main:container/push-receive.sh > /tmp/old.sh` to compare)
#   --files N          [BENCH_FILES=20000]
#   --runs N           [BENCH_RUNS=7]       edits (pairs) per script
# Needs bash, git, coreutils (strace optional). Everything lives in a temporary directory,
# removed at exit.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=test/bench/lib.sh
source "$root/test/bench/lib.sh"
files=${BENCH_FILES:-20000}
runs=${BENCH_RUNS:-7}
scripts=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --files) files=${2:?--files needs a value}; shift 2 ;;
    --runs) runs=${2:?--runs needs a value}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    -*) echo "receive.sh: unknown option $1" >&2; exit 2 ;;
    *) scripts+=("$(realpath "$1")"); shift ;;
  esac
done
[[ ${#scripts[@]} -gt 0 ]] || scripts=("$root/container/push-receive.sh")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { echo "bench-receive: $*" >&2; }

say "making a repository of $files files"
repo=$work/repo
bench_repo "$repo" "$files" 1024
cd "$repo"
commit=$(git rev-parse HEAD)
tree=$(git rev-parse 'HEAD^{tree}')

# receive N SCRIPT ARGS...: run push-receive.sh for workspace N (stdin: the pack).
receive() {
  local n=$1
  shift
  TRAMPOLINE_WORKSPACE=$work/ws$n TRAMPOLINE_RUN_DIR=$work/run$n bash "$@"
}

say "first push into ${#scripts[@]} workspace(s)"
git pack-objects --revs --stdout -q <<<"$commit" >"$work/full.pack"
for n in "${!scripts[@]}"; do
  mkdir -p "$work/ws$n"
  receive "$n" "${scripts[$n]}" receive --tree "$tree" --base "$commit" --branch main <"$work/full.pack" >/dev/null
done

# measure OUT CMD...: append "wall cpu" (ms) of CMD (stdin: $work/framed) to OUT.
measure() {
  local out=$1 times
  shift
  times=$( { TIMEFORMAT='%3R %3U %3S'; time "$@" <"$work/framed" >/dev/null 2>&1; } 2>&1) || { say "failed: $*"; exit 1; }
  read -r real user sys <<<"$times"
  echo "$((10#${real/./})) $((10#${user/./} + 10#${sys/./}))" >>"$out"
}

# The edits, as the CLI makes them: the work tree's tree in a temporary index, and a pack of
# the objects the pushed tree lacks (the commit is unchanged).
last=$tree
for ((r = 0; r < runs; r++)); do
  echo "edit $r" >>d7/f7.txt
  cp .git/index "$work/index"
  new=$(GIT_INDEX_FILE=$work/index git add -A && GIT_INDEX_FILE=$work/index git write-tree)
  git rev-list --objects "$new" --not "$last" | git pack-objects --stdout -q >"$work/edit.pack"
  count=$(git rev-list --objects "$new" --not "$last" | wc -l)
  { stat -c %s "$work/edit.pack"; cat "$work/edit.pack"; } >"$work/framed"
  for n in "${!scripts[@]}"; do
    # Unchanged: the command alone. Edit: the framed receive, then the same command.
    measure "$work/same.$n" bash -c true
    measure "$work/edit.$n" env TRAMPOLINE_WORKSPACE="$work/ws$n" TRAMPOLINE_RUN_DIR="$work/run$n" \
      bash "${scripts[$n]}" receive --tree "$new" --base "$commit" --from "$last" --branch main --objects "$count" --framed -- bash -c true
    got=$(git -C "$work/ws$n/src" rev-parse 'refs/trampoline/pushed^{tree}')
    [[ $got == "$new" ]] || { say "workspace $n has $got, not $new"; exit 1; }
    # The files are the pushed tree's: index = tree, work tree = index, nothing untracked.
    ( cd "$work/ws$n/src" && [[ $(git write-tree) == "$new" ]] && git diff-files --quiet && [[ -z $(git ls-files -o --exclude-standard) ]] ) ||
      { say "workspace $n is not the pushed tree"; exit 1; }
  done
  last=$new
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
# processes N: the processes script N starts for one more edit (strace), or - without strace.
processes() {
  command -v strace >/dev/null || { echo -; return; }
  local n=$1 new count
  echo "procs $n" >>d7/f7.txt # one more edit, the same for each script
  cp .git/index "$work/index"
  new=$(GIT_INDEX_FILE=$work/index git add -A && GIT_INDEX_FILE=$work/index git write-tree)
  git rev-list --objects "$new" --not "$last" | git pack-objects --stdout -q >"$work/edit.pack"
  count=$(git rev-list --objects "$new" --not "$last" | wc -l)
  { stat -c %s "$work/edit.pack"; cat "$work/edit.pack"; } >"$work/framed"
  git checkout -q -- d7/f7.txt
  TRAMPOLINE_WORKSPACE=$work/ws$n TRAMPOLINE_RUN_DIR=$work/run$n strace -f -qq -e trace=execve -o "$work/strace" \
    bash "${scripts[$n]}" receive --tree "$new" --base "$commit" --from "$last" --branch main --objects "$count" --framed -- true <"$work/framed" >/dev/null 2>&1
  grep -c 'execve(' "$work/strace"
}

echo "after a one-file edit in $files files: the pod's receive + command vs the command alone; medians of $runs (ms; cpu = user + sys)"
printf '%-32s %9s %9s %9s %12s %12s %6s\n' script cmd-wall edit-wall edit-cpu wall-vs-first cpu-vs-first execs
for n in "${!scripts[@]}"; do
  sw[n]=$(cut -d' ' -f1 "$work/same.$n" | median)
  ew[n]=$(cut -d' ' -f1 "$work/edit.$n" | median)
  ec[n]=$(cut -d' ' -f2 "$work/edit.$n" | median)
  printf '%-32s %9s %9s %9s %12s %12s %6s\n' "${scripts[$n]#"$root"/}" "${sw[n]}" "${ew[n]}" "${ec[n]}" \
    "$(ratio "${ew[n]}" "${ew[0]}")" "$(ratio "${ec[n]}" "${ec[0]}")" "$(processes "$n")"
done
