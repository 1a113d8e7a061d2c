#!/usr/bin/env bash
# The self-test of test/lib.sh, without a cluster (./test.sh unit runs it): check counts
# every command of a function, keeps the caller's set -e, poll waits for a state and gives
# up at its deadline, json_field reads nested fields and arrays and evaluates nothing, and
# the output formats test.sh's run_stage, test/under-load.sh and CI read. Each case runs
# the library in a fresh bash of its own; this file's own counts are the library's too.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib.sh
source "$here/lib.sh"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# lib SCRIPT: SCRIPT run by bash -euo pipefail after sourcing the library (stdout and
# stderr together; the exit code is the script's).
lib() { bash -euo pipefail -c 'source "$1"; eval "$2"' _ "$here/lib.sh" "$1" 2>&1; }
# expect DESCRIPTION WANT GOT: a pass when GOT is WANT, else a failure showing both.
expect() {
  if [[ $3 == "$2" ]]; then pass "$1"; else fail "$1"; printf '    | want: %s\n    | got:  %s\n' "${2//$'\n'/$'\n    |       '}" "${3//$'\n'/$'\n    |       '}"; fi
}

log "check"
expect "a failing command inside a function fails the check, though a later one succeeds" \
  $'FAIL early failure\n0 1' "$(lib 'f() { false; true; }; check "early failure" f; echo "$passes $failures"')"
expect "a function whose commands all succeed passes" \
  $'PASS all fine\n1 0' "$(lib 'f() { true; test 1 = 1; }; check "all fine" f; echo "$passes $failures"')"
expect "a failing stage of a pipeline fails the check (pipefail)" \
  'FAIL pipe' "$(lib 'f() { false | true; }; check pipe f')"
expect "an unset variable fails the check (nounset)" \
  'FAIL unset' "$(lib 'f() { echo "$no_such_variable" >/dev/null; }; check unset f 2>/dev/null')"
expect "a program's exit code decides, its output passes through" \
  $'out\nPASS program\nFAIL program 2' "$(lib 'check program echo out; check "program 2" test 1 = 2')"
expect "a failed check does not end the caller under set -e, which stays on" \
  $'FAIL no exit\nstill here *e*' "$(lib 'check "no exit" false; echo "still here ${-//[^e]/}" | sed "s/e\$/*e*/"')"
expect "a caller without set -e stays without it" \
  $'PASS kept\nno errexit' "$(lib 'set +e; check kept true; [[ $- == *e* ]] && echo errexit || echo no errexit')"
expect "a check's command runs in a subshell: it changes nothing of the caller's" \
  $'PASS sub\nunchanged' "$(lib 'v=unchanged; f() { v=changed; }; check sub f; echo "$v"')"
mkdir -p "$scratch/logs"
got=$(CHECK_LOG_DIR=$scratch/logs lib 'f() { echo said-this; false; echo not-reached; }; check logged f; check quiet true')
expect "with CHECK_LOG_DIR, a failed check shows its output and last commands" \
  "FAIL logged|    | said-this|    | last commands:|PASS quiet" "$(grep -v '^    | +' <<<"$got" | paste -sd'|')"
expect "with CHECK_LOG_DIR, each check's output is in a file of its own" \
  "said-this" "$(cat "$scratch/logs/check-0.log")"

log "poll"
start=$SECONDS
code=0
lib 'poll 1 false' >/dev/null || code=$?
expect "poll is false at its deadline" "1 waited" "$code $( ((SECONDS - start >= 1)) && echo waited || echo "did not wait")"
# A state that appears on the third look: poll waits for it, not for a time.
expect "poll returns once its command succeeds" "0 3" \
  "$(lib 'n=0; third() { n=$((n + 1)); ((n >= 3)); }; code=0; poll 30 third || code=$?; echo "$code $n"')"

log "json_field"
json='{"phase":"Running","farm":{"workers":[{"id":"w0","reused":true},{"id":"w1"}]},"list":[{"id":"a"}],"none":null,"n":0,"s":"$(touch '$scratch'/evaluated)"}'
field() { json_field "$1" <<<"$json"; }
expect "a top-level field" Running "$(field phase)"
expect "a nested field in an array" w1 "$(field farm.workers.1.id)"
expect "an array index first (0.id)" a "$(json_field 0.id <<<'[{"id":"a"},{"id":"b"}]')"
expect "an array's length" 2 "$(field farm.workers.length)"
expect "a boolean, a number, null" "true 0 null" "$(field farm.workers.0.reused) $(field n) $(field none)"
expect "an object prints as JSON" '{"id":"w0","reused":true}' "$(field farm.workers.0)"
expect "a missing field prints undefined" "undefined undefined" "$(field nope) $(field nope.deeper)"
expect "* maps over an array, one line each" $'w0\nw1' "$(field 'farm.workers.*.id')"
expect "* over an empty array prints nothing" "" "$(json_field 'list.*.id' <<<'{"list":[]}')"
expect "a string that looks like code is only a string" "\$(touch $scratch/evaluated) absent" \
  "$(field s) $([[ -e $scratch/evaluated ]] && echo evaluated || echo absent)"

log "output"
expect "log writes a ==> section to stderr" $'\n==> a section' "$(lib 'log a section 2>&1 >/dev/null')"
code=0
got=$(lib 'pass one; fail two; summary') || code=$?
expect "summary closes with N passed, N failed, false after a failure" \
  $'PASS one\nFAIL two\n\n1 passed, 1 failed\n1' "$got"$'\n'"$code"
expect "summary is true when nothing failed" $'PASS one\n\n1 passed, 0 failed' "$(lib 'pass one; summary')"

summary
