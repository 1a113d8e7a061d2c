# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034 # root, tramp, check... come from test.sh, which reads what this sets
# Binary caches against a real local HTTP cache, sourced by test.sh (tramp, check, log,
# json_field). The test host signs two caches with two keys and serves them on the local
# cluster's bridge address (the harness's own network); the pod trusts only the first.
#
#   cache_serve WORK          before setup: keys, the server; sets cache_options
#   cache_journey WORK SSH_CONFIG --name <instance> -n <namespace>
#
# Only on the local cluster: elsewhere the pods could not reach this host's server.

cache_options=()
cache_server_pid=

cache_serve() {
  local work=$1 node_ip
  node_ip=$(source "$root/test/local-cluster/lib/common.sh" && echo "$NODE_IP")
  cache_dir=$work/caches
  mkdir -p "$cache_dir/good" "$cache_dir/bad"
  for c in good bad; do
    printf 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n' >"$cache_dir/$c/nix-cache-info"
    nix-store --generate-binary-cache-key "trampoline-e2e-$c-1" "$work/$c.sk" "$work/$c.pk"
  done
  # Bound to the bridge address only: reachable from the pods, from nothing outside. Port
  # 0: the kernel picks a free one (another run may serve a cache of its own), and the
  # server says which; only then is it ours to probe.
  python3 -u -m http.server --bind "$node_ip" --directory "$cache_dir" 0 >"$work/cache-server.log" 2>&1 &
  cache_server_pid=$!
  local deadline=$((SECONDS + 30)) cache_port=''
  until [[ -n $cache_port ]] && curl -fsS "http://$node_ip:$cache_port/good/nix-cache-info" >/dev/null 2>&1; do
    ((SECONDS < deadline)) && kill -0 "$cache_server_pid" 2>/dev/null || { echo "cache server did not start: $(cat "$work/cache-server.log")" >&2; return 1; }
    [[ -n $cache_port ]] || cache_port=$(sed -n 's/^Serving HTTP on .* port \([0-9]*\) .*/\1/p' "$work/cache-server.log")
    sleep 0.2
  done
  cache_host=$node_ip
  cache_url=http://$node_ip:$cache_port
  cache_options=(--substituter "$cache_url/good" --substituter "$cache_url/bad" --trusted-public-key "$(cat "$work/good.pk")")
}

# In test.sh's EXIT trap, under set -e: the server's own status (143 after the TERM) must
# not become the test run's.
cache_stop() {
  if [[ -n $cache_server_pid ]]; then
    kill "$cache_server_pid" 2>/dev/null || true
    wait "$cache_server_pid" 2>/dev/null || true
  fi
  cache_server_pid=
}

# cache_publish WORK SSH_CONFIG ALIAS SALT CACHE: evaluate the probe in the pod, build it
# here with the feature, sign it with CACHE's key into CACHE; prints the output path.
cache_publish() {
  local work=$1 ssh_config=$2 alias=$3 salt=$4 cache=$5 drv out
  shift 5
  drv=$(tramp shell "$@" -- sh -c 'cd /workspace/src && nix-instantiate cache-probe.nix --argstr salt "$1"' _ "$salt") || return 1
  # --derivation: the .drv itself (as an installable it would mean "build it there").
  NIX_SSHOPTS="-F $ssh_config" nix --extra-experimental-features nix-command copy --derivation --no-check-sigs --from "ssh-ng://$alias" "$drv" >&2 || return 1
  out=$(nix-store --realise "$drv" --option system-features trampoline-cache-test --option sandbox false --option build-users-group '' --option substituters '' 2>/dev/null) || return 1
  nix --extra-experimental-features nix-command copy --to "file://$cache_dir/$cache?secret-key=$work/$cache.sk" "$out" >&2 || return 1
  echo "$out"
}

cache_journey() {
  local work=$1 ssh_config=$2
  shift 2
  local name alias out published code
  name=$(journey_arg --name "$@")
  alias=trampoline-$name
  out=$(tramp status "$@" --json | json_field 0.substituters)
  check "status shows the pod's binary caches ($out)" grep -qF "$cache_url/good" <<<"$out"

  published=$(cache_publish "$work" "$ssh_config" "$alias" "good-$$" good "$@") || published=""
  check "the test host built the probe and signed it into the good cache" test -n "$published"
  out=$(tramp shell "$@" -- sh -c 'cd /workspace/src && nix-build cache-probe.nix --no-out-link --argstr salt "$1" && cat "$(nix-build cache-probe.nix --no-out-link --argstr salt "$1")"' _ "good-$$" 2>"$work/cache.err") || true
  check "the pod got what it cannot build from the signed cache" grep -q "built-on-the-host good-$$" <<<"$out"

  published=$(cache_publish "$work" "$ssh_config" "$alias" "bad-$$" bad "$@") || published=""
  check "the test host signed another probe with a key the pod does not trust" test -n "$published"
  code=0
  tramp shell "$@" -- sh -c 'cd /workspace/src && nix-build cache-probe.nix --no-out-link --argstr salt "$1"' _ "bad-$$" >/dev/null 2>"$work/cache-bad.err" || code=$?
  check "a path signed with another key is refused (exit $code)" test "$code" != 0
  check "and Nix says its signature is not trusted" grep -qi "not signed by any of the keys" "$work/cache-bad.err"
}
