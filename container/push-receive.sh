#!/usr/bin/env bash
# push-receive.sh <tree-id>: receive a pushed source tree as a tar stream on stdin and
# make it /workspace/src. The tree is extracted into /workspace/.trees/<id>.partial,
# renamed to /workspace/.trees/<id> and only then is the /workspace/src symlink swapped
# (atomically), so an interrupted or corrupt push leaves the previous tree in place.
# <tree-id> names the content (e.g. a git tree hash): a tree already present is reused.
# Prints nothing on success; errors go to stderr with a non-zero status:
#   1   failed (the message says why)
#   28  the volume is full (No space left on device; 28 is ENOSPC's errno)
#   75  another push held the lock for the whole bounded wait (EX_TEMPFAIL)
# One push at a time per workspace: a second one waits (bounded) for the first. The lock
# needs only bash and coreutils (no flock: images without util-linux must work).
# A push whose stream stops for TRAMPOLINE_PUSH_STALL seconds (120) fails and frees the
# lock: its sender is gone even if the stream was never closed (a laptop that dropped off
# the network, a connection the cluster kept half-open).
set -euo pipefail

WORKSPACE=${TRAMPOLINE_WORKSPACE:-/workspace}
RUN=${TRAMPOLINE_RUN_DIR:-/run/trampoline}
LOCK_WAIT=${TRAMPOLINE_PUSH_LOCK_WAIT:-600}
STALL=${TRAMPOLINE_PUSH_STALL:-120}
TREES=$WORKSPACE/.trees
LOCK=$TREES/.push-lock
EXIT_FULL=28
EXIT_BUSY=75
id=${1:-}

die() { echo "push-receive: $*" >&2; exit 1; }
volume_full() {
  echo "push-receive: the store volume is full (No space left on device while $1); $WORKSPACE/src is unchanged. Free space (trampoline maintenance) or use a bigger volume (--store-size)." >&2
  exit "$EXIT_FULL"
}
# attempt WHAT CMD...: run CMD; on failure say WHAT failed and why (a full volume apart).
attempt() {
  local what=$1 out
  shift
  if ! out=$("$@" 2>&1); then
    case $out in *'No space left on device'*) volume_full "$what" ;; esac
    die "$what failed: $out"
  fi
}

[[ $id =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ && $id != *.partial ]] ||
  die "usage: push-receive.sh <tree-id> (letters, digits, '.', '_', '-'; got '${id}')"

# --- the lock ---------------------------------------------------------------------------
# $LOCK is a directory holding one empty file named after its holder, <pid>-<start time>
# (the start time tells a live holder from a recycled pid). It is taken by renaming a
# staging directory that already names us onto $LOCK: rename(2) succeeds only when $LOCK
# does not exist (or is empty), so it is never held without a name in it. A holder that
# died without releasing (killed) is removed by whoever sees it dead first: unlinking its
# name succeeds for one waiter only, and rmdir then fails if someone took the lock since.

# start_time PID: the process's start time (clock ticks after boot), empty if it is gone.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  stat=${stat##*) } # after "pid (comm) ": fields 3...; the start time is field 22
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $stat
  echo "${20:-}"
}

# holder_alive NAME: the process NAME (<pid>-<start time>) still runs.
holder_alive() {
  local pid=${1%%-*} started=${1#*-}
  if [ -n "$started" ]; then [ "$(start_time "$pid")" = "$started" ]; else kill -0 "$pid" 2>/dev/null; fi
}

me="$$-$(start_time $$)"
staging=$TREES/.push-lock.$me
held=""

release_lock() {
  [ -z "$held" ] || { rm -f "$LOCK/$me"; rmdir "$LOCK" 2>/dev/null || true; }
  rm -rf "$staging"
}

take_lock() {
  local deadline=$((SECONDS + LOCK_WAIT)) holder said=""
  attempt "preparing the push lock" mkdir -p "$staging"
  attempt "preparing the push lock" touch "$staging/$me"
  until mv -T "$staging" "$LOCK" 2>/dev/null; do
    holder=$(ls -A "$LOCK" 2>/dev/null | head -n 1) || true
    if [ -n "$holder" ] && ! holder_alive "$holder"; then
      if rm "$LOCK/$holder" 2>/dev/null; then rmdir "$LOCK" 2>/dev/null || true; fi
      continue
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "push-receive: another push (pid ${holder%%-*} in this pod) still holds $LOCK after ${LOCK_WAIT}s; $WORKSPACE/src is unchanged. Try again when it is done." >&2
      exit "$EXIT_BUSY"
    fi
    if [ -z "$said" ] && [ -n "$holder" ]; then
      echo "push-receive: waiting for another push to this workspace to finish (pid ${holder%%-*}; up to ${LOCK_WAIT}s)" >&2
      said=1
    fi
    sleep 0.2
  done
  held=1
}

# --- a stalled stream ---------------------------------------------------------------------
# stall_watch PARTIAL: in the background while tar unpacks into PARTIAL. When tar has neither
# read nor written a byte for $STALL seconds, end it with SIGUSR1 (tar's status is then
# 128+10): nothing more will come.
stall_watch() {
  local prefix="tar -x -R -v -f - -C $1 " pid="" d io last="" idle=0
  while sleep 5; do
    if [ -z "$pid" ]; then
      for d in /proc/[0-9]*; do
        case $(tr '\0' ' ' 2>/dev/null <"$d/cmdline") in "$prefix"*) pid=${d#/proc/} && break ;; esac
      done
      continue
    fi
    io=$(grep -E '^(rchar|wchar):' "/proc/$pid/io" 2>/dev/null | tr '\n' ' ') || true
    [ -n "$io" ] || return 0 # tar is gone
    if [ "$io" = "$last" ]; then idle=$((idle + 5)); else idle=0 last=$io; fi
    if [ "$idle" -ge "$STALL" ]; then
      kill -USR1 "$pid" 2>/dev/null || true
      return 0
    fi
  done
}

mkdir -p "$TREES" 2>/dev/null || attempt "creating $TREES" mkdir -p "$TREES"
partial=$TREES/$id.partial
watcher=""
remove_tree() { chmod -R u+w "$1" 2>/dev/null || true; rm -rf "$1"; }
# Trap first: a push killed while it waits leaves no staging directory behind.
trap 'if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null || true; fi; if [ -n "$held" ]; then remove_tree "$partial"; fi; release_lock' EXIT
take_lock

# Leftovers of pushes that were killed midway, staging directories of killed waiters, and
# the lock file of the flock-based versions of this script.
for stale in "$TREES"/*.partial; do [ -e "$stale" ] && remove_tree "$stale"; done
for stale in "$TREES"/.push-lock.*; do
  [ -e "$stale" ] && [ "$stale" != "$staging" ] && ! holder_alive "${stale##*/.push-lock.}" && rm -rf "$stale"
done
for stale in "$TREES"/.tar-* "$TREES/.lock"; do [ -e "$stale" ] && rm -f "$stale"; done

attempt "creating $partial" mkdir "$partial"
# GNU tar exits 0 when the stream stops exactly between two members; with -R -v it prints
# a line per block, and one saying "Block of NULs" only when it reaches the end-of-archive
# blocks the sender writes last. Its messages are kept in memory: the volume may be full.
stall_watch "$partial" &
watcher=$!
set +e
output=$(tar -x -R -v -f - -C "$partial" --no-same-owner 2>&1 | tail -n 40)
status=$?
set -e
kill "$watcher" 2>/dev/null || true
watcher=""
if [ "$status" = 138 ]; then
  die "no data arrived for ${STALL}s: the sender of $id is gone (killed, or its connection dropped without closing); $WORKSPACE/src is unchanged"
fi
if [ "$status" != 0 ]; then
  case $output in *'No space left on device'*) volume_full "unpacking $id" ;; esac
  die "the tar stream for $id is corrupt or was cut short (tar: $(grep -v '^block' <<<"$output" | head -n 3 | tr '\n' ' ')); $WORKSPACE/src is unchanged"
fi
case $output in
  *'** Block of NULs **'*) ;;
  *) die "the tar stream for $id ended before its end-of-archive marker (cut short?); $WORKSPACE/src is unchanged" ;;
esac

tree=$TREES/$id
if [ -e "$tree" ]; then
  remove_tree "$partial"
else
  attempt "renaming $partial" mv -T "$partial" "$tree"
fi
if [ -e "$WORKSPACE/src" ] && [ ! -L "$WORKSPACE/src" ]; then
  die "$WORKSPACE/src is a real directory, not the symlink pushes manage; move it away and push again"
fi
# ln + rename: readers see the old tree or the new one, never neither.
attempt "linking the new tree" ln -sfn "$tree" "$WORKSPACE/.src.new"
attempt "swapping $WORKSPACE/src" mv -T "$WORKSPACE/.src.new" "$WORKSPACE/src"

for old in "$TREES"/*; do
  [ "$old" = "$tree" ] || [ ! -e "$old" ] || remove_tree "$old"
done
# The idle monitor counts a recent push as activity.
mkdir -p "$RUN" 2>/dev/null && touch "$RUN/last-push" 2>/dev/null || true
