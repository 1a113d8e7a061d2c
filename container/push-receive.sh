#!/usr/bin/env bash
# push-receive.sh <tree-id>: receive a pushed source tree as a tar stream on stdin and
# make it /workspace/src. The tree is extracted into /workspace/.trees/<id>.partial,
# renamed to /workspace/.trees/<id> and only then is the /workspace/src symlink swapped
# (atomically), so an interrupted or corrupt push leaves the previous tree in place.
# <tree-id> names the content (e.g. a git tree hash): a tree already present is reused.
# Prints nothing on success; errors go to stderr with a non-zero status.
set -euo pipefail

WORKSPACE=${TRAMPOLINE_WORKSPACE:-/workspace}
RUN=${TRAMPOLINE_RUN_DIR:-/run/trampoline}
TREES=$WORKSPACE/.trees
id=${1:-}

die() { echo "push-receive: $*" >&2; exit 1; }
[[ $id =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ && $id != *.partial ]] ||
  die "usage: push-receive.sh <tree-id> (letters, digits, '.', '_', '-'; got '${id}')"

mkdir -p "$TREES"
# One push at a time; a second one waits for the first (bounded).
exec 9>"$TREES/.lock"
flock -w 600 9 || die "another push still holds $TREES/.lock after 600s"

remove_tree() { chmod -R u+w "$1" 2>/dev/null || true; rm -rf "$1"; }
# Leftovers of pushes that were killed midway.
for stale in "$TREES"/*.partial "$TREES"/.tar-*; do [ -e "$stale" ] && remove_tree "$stale"; done

partial=$TREES/$id.partial
errors=$TREES/.tar-errors
trap 'remove_tree "$partial"; rm -f "$errors"' EXIT
mkdir "$partial"
# GNU tar exits 0 when the stream stops exactly between two members; with -R -v its last
# line tells whether it reached the end-of-archive blocks the sender writes last.
set +e
last=$(tar -x -R -v -f - -C "$partial" --no-same-owner 2>"$errors" | tail -n 1)
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
  die "the tar stream for $id is corrupt or was cut short (tar: $(grep -v '^block' "$errors" | head -n 3 | tr '\n' ' ')); $WORKSPACE/src is unchanged"
fi
case $last in
  *'** Block of NULs **'*) ;;
  *) die "the tar stream for $id ended before its end-of-archive marker (cut short?); $WORKSPACE/src is unchanged" ;;
esac

tree=$TREES/$id
if [ -e "$tree" ]; then
  remove_tree "$partial"
else
  mv -T "$partial" "$tree"
fi
if [ -e "$WORKSPACE/src" ] && [ ! -L "$WORKSPACE/src" ]; then
  die "$WORKSPACE/src is a real directory, not the symlink pushes manage; move it away and push again"
fi
# ln + rename: readers see the old tree or the new one, never neither.
ln -sfn "$tree" "$WORKSPACE/.src.new"
mv -T "$WORKSPACE/.src.new" "$WORKSPACE/src"

for old in "$TREES"/*; do
  [ "$old" = "$tree" ] || [ ! -e "$old" ] || remove_tree "$old"
done
# The idle monitor counts a recent push as activity.
mkdir -p "$RUN" 2>/dev/null && touch "$RUN/last-push" 2>/dev/null || true
