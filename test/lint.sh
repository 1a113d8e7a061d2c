#!/usr/bin/env bash
# Runs shellcheck over every shell script of the repository (warnings and errors), the same
# check as `nix flake check`'s shellcheck. Prints the plain closing line.
set -uo pipefail
cd "$(dirname "$0")/.." || exit
command -v shellcheck >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends shellcheck >&2
mapfile -t files < <({ git ls-files '*.sh'; git ls-files bin | while read -r f; do head -c 64 "$f" | grep -q '^#!.*sh' && echo "$f"; done; } | sort -u)
passed=0 failed=0
for f in "${files[@]}"; do
  if out=$(shellcheck -S warning -x -P SCRIPTDIR "$f" 2>&1); then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL shellcheck $f"
    printf '%s\n' "$out" | sed 's/^/  /'
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
