# shellcheck shell=bash
# test/lib.sh: the one shell test library, sourced by test.sh (and so the e2e journeys),
# container/tests/lib.sh and test/local-cluster/smoke.sh. Its output is what test.sh's
# run_stage, test/under-load.sh and CI read: `PASS <desc>` and `FAIL <desc>` lines, a
# closing `N passed, N failed` line (summary), and `==> section` logs on stderr.

passes=${passes:-0}
failures=${failures:-0}
# The repository, for its pinned node (json_field).
test_lib_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '\n==> %s\n' "$*" >&2; }
pass() { passes=$((passes + 1)); printf 'PASS %s\n' "$*"; }
fail() { failures=$((failures + 1)); printf 'FAIL %s\n' "$*"; }

# summary: the closing line; false when a check failed.
summary() {
  echo
  echo "$passes passed, $failures failed"
  [[ $failures -eq 0 ]]
}

# check DESCRIPTION COMMAND...: runs COMMAND (a program or a function), records a pass or
# a failure. Every command inside a function counts: COMMAND runs in a subshell under
# set -euo pipefail, called as a plain command and not as an `if` condition (there bash
# ignores set -e and only a function's last command would decide). A check called from
# a context that already ignores set -e (a function run as `f || ...`) has the same hole:
# call journeys plainly. Inside COMMAND, set -e never counts `! cmd` nor the failure of a
# non-final part of `a && b`: write `! cmd || return 1`.
# With CHECK_LOG_DIR set, COMMAND's output and an xtrace go to files there, and a failed
# check shows their tails (the container tests); otherwise the output passes through.
check() {
  local description=$1 rc errexit='' out=''
  shift
  [[ $- == *e* ]] && errexit=1
  set +e
  if [[ -n ${CHECK_LOG_DIR:-} ]]; then
    out=$CHECK_LOG_DIR/check-$((passes + failures)).log
    # The trace goes to a file of its own (fd 9), so it never mixes into captured output.
    (
      set -euo pipefail
      exec 9>"$out.trace"
      BASH_XTRACEFD=9
      set -x
      "$@"
    ) >"$out" 2>&1
    rc=$?
  else
    (
      set -euo pipefail
      "$@"
    )
    rc=$?
  fi
  [[ -z $errexit ]] || set -e
  if [[ $rc == 0 ]]; then
    pass "$description"
    return 0
  fi
  fail "$description"
  if [[ -n $out ]]; then
    tail -n 25 "$out" | sed 's/^/    | /'
    echo "    | last commands:"
    tail -n 5 "$out.trace" | sed 's/^/    | /'
  fi
  return 0
}

# poll SECONDS COMMAND...: run COMMAND every 0.2 s until it succeeds (the state a check
# waits for, never a time); false after SECONDS.
poll() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# json_field PATH: the value at PATH (dot-separated keys and array indexes: `0.id`,
# `outputs.length`) of the JSON on stdin. Strings print bare, objects and arrays as JSON,
# a missing field as `undefined`. A `*` step maps over an array, one line per element
# (`active.*`, `workers.*.pod`; nothing for an empty array). Data is only parsed, never
# evaluated. Node: test.sh's $node_bin, else the repository's pinned one, else PATH's.
json_field() {
  local node=${node_bin:-$test_lib_root/node_modules/.bin/node}
  [[ -x $node ]] || node=node
  # One write: a reader that stops early (grep -q) never makes node fail on a closed pipe.
  "$node" -e '
    const get = (v, path) => !path.length ? [v]
      : path[0] === "*" ? (Array.isArray(v) ? v : []).flatMap((e) => get(e, path.slice(1)))
      : get(v?.[path[0]], path.slice(1));
    let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const values = get(JSON.parse(s), process.argv[1].split("."));
      process.stdout.write(values.map((v) => (typeof v === "object" ? JSON.stringify(v) : String(v)) + "\n").join(""));
    });' "$1"
}
