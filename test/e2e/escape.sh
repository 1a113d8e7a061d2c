# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # root, tramp, check... come from test.sh, which reads what this sets
# The escape suite: from the user container, as a prompt-injected agent would try, every
# way to root that Nix options, sockets, mounts and tokens might open. Each attempt must
# fail; each is its own check. Sourced by test.sh (tramp, check, kubectl, json_field).
#
#   escape_journey WORK --name <instance> -n <namespace>
#
# Witnesses are things only root in the daemon container could make: files directly in
# /nix (0755 root; UID 1000 cannot create them) that a hook would touch. A control run as
# root through the daemon shows the same hook does run when it is allowed to, so a
# missing marker means "refused", not "never tried".

# in_pod ARGS... -- CMD: a command in the user container, as an agent runs it.
escape_in_pod() { tramp shell "${escape_args[@]}" -- "$@"; }

escape_journey() {
  local work=$1
  shift
  escape_args=("$@")
  local name namespace salt out err code
  name=$(journey_arg --name "$@")
  namespace=$(journey_arg -n "$@")
  namespace=${namespace:-default}
  salt="$$-$RANDOM"
  err=$work/escape.err

  # probe OPTION VALUE: build the sandbox probe with a client-side option; prints the
  # probe's report (the daemon's warnings go to $err).
  probe() {
    escape_in_pod sh -c 'cd /workspace/src && out=$(nix-build escape.nix --no-out-link --argstr salt "$1" --option "$2" "$3") && cat "$out"' \
      _ "$salt-$1" "$2" "$3" 2>"$err"
  }

  out=$(probe sandbox sandbox false) || true
  check "escape: --option sandbox false is ignored (builder still sandboxed)" \
    bash -c 'grep -q "^uid " <<<"$1" && ! grep -q "sees /opt/trampoline" <<<"$1"' _ "$out"

  out=$(probe bug build-users-group '') || true
  check "escape: --option build-users-group '' does not make the builder root (no capabilities)" \
    bash -c 'grep -q "^uid " <<<"$1" && ! grep -qx "uid 0" <<<"$1" && grep -Eqx "CapEff:[[:space:]]+0+" <<<"$1"' _ "$out"

  out=$(probe esp extra-sandbox-paths /etc/trampoline/signing) || true
  check "escape: extra-sandbox-paths cannot bring the signing key into a build" \
    bash -c 'grep -q "^uid " <<<"$1" && ! grep -q "sees /etc/trampoline/signing" <<<"$1"' _ "$out"

  # Darwin's impure host paths: the build must still see none of the pod's paths.
  out=$(probe aihd allowed-impure-host-deps /opt/trampoline) || true
  check "escape: allowed-impure-host-deps opens no host path" bash -c 'grep -q "^uid " <<<"$1" && ! grep -q "^sees " <<<"$1"' _ "$out"

  # A substituter the daemon does not list in trusted-substituters (a closed loopback port).
  out=$(probe subst substituters http://127.0.0.1:9) || true
  check "escape: an untrusted substituter is ignored (never contacted)" \
    bash -c 'grep -q "^uid " <<<"$1" && grep -q "ignoring untrusted substituter" "$2" && ! grep -qi "unable to download" "$2"' _ "$out" "$err"

  # builders: honoured, the daemon would try to reach the builder; ignored, it has none.
  code=0
  escape_in_pod sh -c 'cd /workspace/src && nix-build escape.nix --no-out-link --argstr salt "$1" --max-jobs 0 --option builders "ssh-ng://root@127.0.0.1 - - 1"' \
    _ "$salt-builders" >/dev/null 2>"$err" || code=$?
  check "escape: --option builders is ignored (no remote builder tried)" \
    bash -c '[ "$1" != 0 ] && grep -q "unable to start any build" "$2" && ! grep -qi "ssh" "$2"' _ "$code" "$err"

  # Hooks run as root in the daemon container: each would leave /nix/pwned-<hook>-<salt>.
  local hook
  hook=$(escape_in_pod sh -c 'f=$(mktemp -d)/escape-hook && printf "#!/bin/sh\ntouch /nix/pwned-%s\n" "$1" >"$f" && chmod +x "$f" && nix-store --add "$f"' _ "$salt") || true
  check "escape: UID 1000 may add a hook program to the store (content-addressed)" grep -q '^/nix/store/.*-escape-hook$' <<<"$hook"
  check "escape: UID 1000 cannot write /nix itself (the witness is root-only)" escape_in_pod sh -c '! touch /nix/witness-probe 2>/dev/null'
  local kind
  for kind in post-build-hook pre-build-hook; do
    escape_in_pod sh -c 'cd /workspace/src && nix-build escape.nix --no-out-link --argstr salt "$1" --option "$2" "$3"' \
      _ "$salt-$kind" "$kind" "$hook" >/dev/null 2>"$err" || true
    check "escape: --option $kind does not run a program as root" \
      escape_in_pod sh -c '! ls /nix/pwned-* 2>/dev/null | grep -q -- "$1"' _ "$salt"
  done
  # diff-hook runs on a --check that finds a difference: a non-deterministic probe.
  escape_in_pod sh -c 'cd /workspace/src && nix-build escape.nix --no-out-link --argstr salt "$1" --arg deterministic false >/dev/null &&
    nix-build escape.nix --no-out-link --argstr salt "$1" --arg deterministic false --check --option run-diff-hook true --option diff-hook "$2"' \
    _ "$salt-diff" "$hook" >/dev/null 2>"$err" || true
  check "escape: --option diff-hook does not run a program as root" \
    escape_in_pod sh -c '! ls /nix/pwned-* 2>/dev/null | grep -q -- "$1"' _ "$salt"
  # Control: root (through exec into the daemon container, which RBAC grants) is trusted,
  # and the same hook does leave its witness. Without this the checks above prove nothing.
  kubectl exec -i -n "$namespace" "trampoline-$name" -c nix-daemon -- sh -c \
    'cat > /tmp/escape.nix && NIX_REMOTE=daemon nix-build /tmp/escape.nix --no-out-link --argstr salt "$1" --option post-build-hook "$2" >/dev/null 2>&1' \
    _ "$salt-control" "$hook" <"$root/test/e2e/escape.nix" 2>/dev/null || true
  check "escape (control): the hook does run for root, so its absence above means refused" \
    kubectl exec -n "$namespace" "trampoline-$name" -c nix-daemon -- sh -c 'ls /nix/pwned-* 2>/dev/null | grep -q -- "$1" && rm -f /nix/pwned-*' _ "$salt"

  # An unsigned input-addressed path: an existing path's export under a new hash.
  code=0
  escape_in_pod sh -c 'set -e; cd /workspace/src; p=$(nix-build escape.nix --no-out-link --argstr salt "$1")
    h=$(basename "$p" | cut -c1-32); n=$(printf "%s" "$h" | tr "0-9a-d" "a-d0-9")
    nix-store --export "$p" | LC_ALL=C sed "s/$h/$n/g" > /tmp/forged.nar
    ! nix-store --check-validity "/nix/store/$n-escape-probe" 2>/dev/null
    nix-store --import < /tmp/forged.nar' _ "$salt-forge" >/dev/null 2>"$err" || code=$?
  check "escape: importing an unsigned input-addressed path is refused (exit $code)" \
    bash -c '[ "$1" != 0 ] && grep -qi "signature\|not allowed\|trusted" "$2"' _ "$code" "$err"

  # The daemon container's files and the signing key.
  local secret_key
  secret_key=$(kubectl get secret "trampoline-$name-signing" -n "$namespace" -o jsonpath='{.data.secret-key}' | base64 -d) || true
  check "escape: the signing Secret exists (so the next checks look for something real)" test -n "$secret_key"
  check "escape: the signing key is not mounted in the user container" escape_in_pod sh -c '! test -e /etc/trampoline/signing'
  # The key goes in on stdin: on a command line the user container could read it.
  out=$(escape_in_pod sh -c 'grep -rlsF -f /dev/stdin /etc /run /home /tmp /workspace /opt /var /root 2>/dev/null; true' <<<"${secret_key#*:}") || out="(the search failed)"
  check "escape: no file the user container can read holds the signing key ($out)" test -z "$out"
  check "escape: the daemon container's processes are invisible (no nix-daemon in /proc)" \
    escape_in_pod sh -c 'for c in /proc/[0-9]*/comm; do read -r n < "$c" 2>/dev/null && [ "$n" = nix-daemon ] && exit 1; done; exit 0'
  check "escape: PID 1 of the user container is its own entrypoint, not the daemon's" \
    escape_in_pod sh -c '! grep -q entrypoint-daemon /proc/1/cmdline'
  check "escape: the daemon still answers after all that" escape_in_pod nix store ping

  # Kubernetes credentials: no token, no kubeconfig, no certificates in reach.
  check "escape: no service-account token is mounted" \
    escape_in_pod sh -c '! test -e /var/run/secrets/kubernetes.io && ! test -e /run/secrets/kubernetes.io'
  check "escape: no Kubernetes credentials anywhere readable (token, kubeconfig, client key)" \
    escape_in_pod sh -c '! find / -xdev \( -path /proc -o -path /sys -o -path /nix/store \) -prune -o \( -name token -path "*serviceaccount*" -o -name "*kubeconfig*" -o -path "*/.kube/config" -o -name "*.key" -path "*kube*" \) -print 2>/dev/null | grep -q .'
  check "escape: the user container runs with no capabilities and no_new_privs" \
    escape_in_pod sh -c 'grep -Eq "^CapEff:[[:space:]]+0+$" /proc/self/status && grep -Eq "^NoNewPrivs:[[:space:]]+1$" /proc/self/status'
  check "escape: no host paths: no hostPath volume in the pod spec" \
    bash -c '! kubectl get pod "$1" -n "$2" -o jsonpath="{.spec.volumes[*].hostPath}" | grep -q .' _ "trampoline-$name" "$namespace"
  check "escape: no host paths: the node's kubelet and root are out of reach" \
    escape_in_pod sh -c '! ls /var/lib/kubelet /host /rootfs /proc/1/root/var/lib/kubelet >/dev/null 2>&1 && [ "$(ls /dev | wc -l)" -lt 30 ]'
  check "escape: sudo/su do not lead to root" \
    escape_in_pod sh -c '! (sudo -n true || su -c true root) </dev/null >/dev/null 2>&1'
}
