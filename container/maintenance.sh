#!/usr/bin/env bash
# maintenance.sh [--no-optimise]: garbage-collect the pod's store, then deduplicate it,
# and print ONE JSON line on stdout: {"before":bytes,"after":bytes,"freed":bytes}
# (disk usage of /nix/store). Progress goes to stderr.
#
# What survives: everything reachable from the daemon's GC roots, which include build
# results rooted as symlinks under /nix/var/nix/gcroots/trampoline/ (and --out-link /
# profile roots), with keep-outputs/keep-derivations (nix.conf) keeping what rebuilding
# them needs. Pushed trees live in /workspace, outside the store, and are never touched.
# Runs as the user through the daemon (trampoline is a trusted user).
set -euo pipefail

STORE=${NIX_STORE_DIR:-/nix/store}
optimise=1
case ${1:-} in
  --no-optimise) optimise=0 ;;
  '') ;;
  *) echo "usage: maintenance.sh [--no-optimise]" >&2; exit 2 ;;
esac
export NIX_REMOTE=${NIX_REMOTE:-daemon}
export PATH=/nix/var/nix/profiles/default/bin:$PATH

# Bytes on disk; hard links (after optimise) count once. A path being built may be
# unreadable for a moment: du still prints its total.
store_bytes() { { du -s -x -B1 "$STORE" 2>/dev/null || true; } | { read -r bytes _ && echo "${bytes:-0}"; }; }

before=$(store_bytes)
echo "maintenance: store uses $before bytes; collecting garbage" >&2
nix-store --gc >&2
if [ "$optimise" = 1 ]; then
  echo "maintenance: optimising (hard-linking identical files)" >&2
  nix-store --optimise >&2
fi
after=$(store_bytes)
freed=$(( before > after ? before - after : 0 ))
echo "maintenance: $after bytes after, $freed freed" >&2
printf '{"before":%d,"after":%d,"freed":%d}\n' "$before" "$after" "$freed"
