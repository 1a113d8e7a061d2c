# shellcheck shell=bash
# Static checks: syntax, the kustomize render against the pod contract, the Nix files.
# Sourced by run.sh.

t_syntax() {
  local f
  for f in "$CONTAINER"/*.sh "$CONTAINER"/image/*.sh "$HERE"/*.sh; do bash -n "$f"; done
  for f in "$CONTAINER"/*.sh "$CONTAINER"/image/*.sh; do
    head -n 1 "$f" | grep -qx '#!/usr/bin/env bash'
    grep -q '^set -euo pipefail' "$f"
  done
}
check "scripts: bash syntax, shebang and set -euo pipefail" t_syntax

t_configmap_lists_all() {
  local f
  for f in "$CONTAINER"/*.sh "$CONTAINER"/nix.conf "$CONTAINER"/sshd_config; do
    [[ " $CONFIGMAP_FILES " == *" ${f##*/} "* ]] || { echo "kustomization.yaml does not list ${f##*/}"; return 1; }
  done
}
check "kustomization: the ConfigMap carries every container/*.sh, nix.conf and sshd_config" t_configmap_lists_all

t_kustomize() {
  kubectl kustomize "$CONTAINER" > "$T/render.yaml"
  python3 "$HERE/check_manifest.py" "$T/render.yaml" "$CONTAINER"
}
check "kustomize render follows the pod contract (names, labels, mounts, security)" t_kustomize

# No nixpkgs here, so nothing can be evaluated; parsing catches syntax errors at least.
t_nix_files_parse() {
  local repo f n=0
  repo=$(dirname "$CONTAINER")
  for f in "$repo"/*.nix "$repo"/container/image/*.nix "$repo"/container/tests/*.nix "$repo"/test/e2e/*.nix; do
    nix-instantiate --parse "$f" >/dev/null || { echo "does not parse: $f"; return 1; }
    n=$((n + 1))
  done
  [ "$n" -ge 6 ]
  grep -q 'buildLayeredImage' "$CONTAINER/image/production.nix"
  grep -q 'buildNpmPackage' "$repo/package.nix"
}
check "every .nix file parses (flake, dev shell, package, images, test derivations)" t_nix_files_parse

t_nix_conf() {
  local c=/opt/trampoline/nix.conf
  grep -qx 'experimental-features = nix-command flakes' $c
  grep -qx 'trusted-users = root' $c
  if grep -E '^(extra-)?trusted-users.*trampoline' $c; then return 1; fi
  grep -qx 'build-users-group = nixbld' $c
  grep -qx 'sandbox = true' $c
  # Caches come from the pod spec; a line here would override the daemon's for every client.
  if grep -Eq '^(extra-)?substituters' $c; then return 1; fi
  NIX_CONF_DIR=/opt/trampoline nix --extra-experimental-features nix-command show-config 2>&1 | tee "$T/logs/show-config" | grep -qx 'sandbox = true'
  ! grep -i 'unknown setting' "$T/logs/show-config"
}
check "nix.conf: features, root the only trusted user, sandbox, no substituters line; Nix accepts every setting" t_nix_conf

t_sshd_config() {
  sed "s|^HostKey .*|HostKey $T/keys/host|" /opt/trampoline/sshd_config > "$T/sshd_config.T"
  /usr/sbin/sshd -T -f "$T/sshd_config.T" > "$T/logs/sshd-T" 2>&1 || { cat "$T/logs/sshd-T"; return 1; }
  grep -qx 'port 2222' "$T/logs/sshd-T"
  grep -qx 'passwordauthentication no' "$T/logs/sshd-T"
  grep -qx 'permitrootlogin no' "$T/logs/sshd-T"
  grep -qx 'authenticationmethods publickey' "$T/logs/sshd-T"
  grep -q '^setenv .*NIX_REMOTE=daemon' "$T/logs/sshd-T"
}
check "sshd_config: port 2222, public keys only, no root, NIX_REMOTE=daemon for sessions" t_sshd_config
