# shellcheck shell=bash
# Agent sessions against the real pod, sourced by test.sh, which provides `tramp`,
# `check "description" command...` and `json_field`, and kubectl. Safe under set -e: a
# failing step is a failed check, never the end of the journey.
#
#   agent_journey --name <instance> -n <namespace>   (the journey's common arguments)
#
# Needs the instance running an image with Claude Code (the offline test image has it).
# A made-up key: claude --version needs none, and the key must never show up anywhere.


agent_journey() {
  local name namespace key out err code secret
  name=$(journey_arg --name "$@")
  namespace=$(journey_arg -n "$@")
  namespace=${namespace:-default}
  key="sk-ant-test-$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  err=$(mktemp)

  code=0
  out=$(ANTHROPIC_API_KEY=$key tramp claude "$@" -- --version 2>"$err") || code=$?
  check "claude --version runs Claude Code in the pod (exit $code)" test "$code" = 0
  check "claude --version prints a Claude Code version ($out)" grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+ \(Claude Code\)' <<<"$out"
  check "the CLI printed no key" bash -c '! grep -qF -- "$1" "$2" && ! grep -qF -- "$1" <<<"$3"' _ "$key" "$err" "$out"

  secret=$(kubectl get secret -n "$namespace" -o name \
    -l "app.kubernetes.io/instance=$name,app.kubernetes.io/managed-by=trampoline,app.kubernetes.io/component=agent" 2>&1) || true
  check "the key is kept in the labelled agent Secret ($secret)" test "$secret" = "secret/trampoline-$name-agent"
  check "the Secret holds exactly that key" \
    test "$(kubectl get secret "trampoline-$name-agent" -n "$namespace" -o jsonpath='{.data.ANTHROPIC_API_KEY}' | base64 -d | sha256sum)" = "$(printf '%s' "$key" | sha256sum)"
  check "the pod received it through its Secret volume" \
    test "$(tramp shell "$@" -- sh -c 'sha256sum < /etc/trampoline/agent/ANTHROPIC_API_KEY')" = "$(printf '%s' "$key" | sha256sum)"
  out=$(kubectl get pods -n "$namespace" -l "app.kubernetes.io/instance=$name" -o yaml) || true
  check "the pod spec names the agent Secret" grep -q "secretName: trampoline-$name-agent" <<<"$out"
  check "but holds no key" bash -c '! grep -qF -- "$1" <<<"$2"' _ "$key" "$out"
  out=$(tramp status "$@" --json) || true
  check "nor in status --json" bash -c '! grep -qF -- "$1" <<<"$2"' _ "$key" "$out"
  check "status --json counts agent sessions ($(json_field 0.agentSessions <<<"$out"))" grep -Eqx '[0-9]+' <<<"$(json_field 0.agentSessions <<<"$out")"

  code=0
  # tramp is a shell function: unset the key in a subshell rather than with env -u.
  out=$(unset ANTHROPIC_API_KEY; tramp claude "$@" -- --version 2>"$err") || code=$?
  check "a later session without a local key uses the stored one (exit $code)" grep -q 'Claude Code' <<<"$out"

  code=0
  (unset ANTHROPIC_API_KEY; tramp claude --name "$name-nopod" -n "$namespace" -- --version) >/dev/null 2>"$err" || code=$?
  check "claude on an instance without a pod fails as other commands do (exit $code)" test "$code" = 5
  check "and starts no pod" bash -c '! kubectl get pod "$1" -n "$2" >/dev/null 2>&1' _ "trampoline-$name-nopod" "$namespace"
  check "and says to run setup" grep -q 'trampoline setup' "$err"
  rm -f "$err"
}
