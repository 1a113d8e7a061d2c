#!/usr/bin/env bash
# push-receive.sh: the pod's side of the workspace. /workspace/src is a git work tree at a
# fixed path (Claude Code keys trust and per-project settings on it); a push sends only the
# git objects the pod lacks and git itself updates the files that changed.
#
#   push-receive.sh receive --tree W --base B [--from W0] [--branch NAME] [--name N --email E] [--objects N] [--force]
#       A git pack on stdin (pack-objects --stdout: the objects of tree W and commit B that
#       the pod lacks; --from names the pushed tree the sender left out). Makes the work
#       tree exactly W, HEAD the branch NAME at B (shallow: B's parents need not be here),
#       refs/trampoline/pushed a commit of W on B (B itself when W is B's tree) and
#       refs/trampoline/base B. Refuses (66) when the pod has changes since the last push
#       (files edited, added or deleted in /workspace/src, or commits past B) unless --force,
#       printing them on stdout as `state` does. --objects N: the pack holds N objects
#       (below 100 they become loose objects, as in git's receive-pack).
#   push-receive.sh receive ... --framed -- COMMAND...
#       The same, then COMMAND (the sh adapter's, one exec for push and command): stdin is a
#       line with the pack's length in bytes, the pack, then COMMAND's own input. Once the
#       push is done stdout gets the line `trampoline-pushed`, then COMMAND runs in place
#       of this script (exec); when it refuses (66, 67) stdout is its state as without.
#   push-receive.sh state
#       The pod's workspace on stdout, one `key value` line each: pushed <tree>, commit
#       <commit>, base <commit>, head <commit>, branch <name>, worktree <tree> (the work tree
#       as `git add -A` would stage it, .gitignore respected), commits <count past base>;
#       then a line `changes` and `git diff-tree -r -z --no-renames pushed worktree`. `-`
#       where there is nothing (no push yet).
#   push-receive.sh adopt --tree P --head H
#       After a pull took the pod's changes home: P (a worktree tree `state` printed) and H
#       become the pushed state, so the next push is not refused. Exit 66 when the pod
#       changed again since.
#
# The update (atomicity): the transfer only adds objects (index-pack, checked complete
# before anything else happens), so a push cut short leaves the previous state. The switch
# (read-tree from the old tree to the new one, then the refs) ignores HUP, INT, TERM and
# PIPE and writes nothing to the connection: a client that goes away cannot cut it short.
# It is journaled (/workspace/.trees/.switch names the target) first: if the pod itself
# dies mid-switch, the next receive or state finishes it.
#
# Exit codes (stderr says why): 1 failed; 28 the volume is full (ENOSPC's errno); 66 the pod
# has changes (listed on stdout); 67 the pod's pushed tree is not --from (stdout: its state
# lines; resend with the objects it lacks); 75 another push held the lock for the whole
# bounded wait (EX_TEMPFAIL). One push at a time per workspace: a second one waits (bounded)
# for the first; the lock needs only bash and coreutils (no flock). A push whose stream
# stops for TRAMPOLINE_PUSH_STALL seconds (120) fails and frees the lock.
set -euo pipefail

WORKSPACE=${TRAMPOLINE_WORKSPACE:-/workspace}
RUN=${TRAMPOLINE_RUN_DIR:-/run/trampoline}
LOCK_WAIT=${TRAMPOLINE_PUSH_LOCK_WAIT:-600}
STALL=${TRAMPOLINE_PUSH_STALL:-120}
SRC=$WORKSPACE/src
TREES=$WORKSPACE/.trees
LOCK=$TREES/.push-lock
JOURNAL=$TREES/.switch
PUSHED_FILE=$TREES/pushed
EXIT_FULL=28
EXIT_CHANGED=66
EXIT_RESEND=67
EXIT_BUSY=75
export GIT_DIR=$SRC/.git GIT_WORK_TREE=$SRC
# Never a pager, an editor or a prompt: nobody is there to answer.
export GIT_PAGER=cat GIT_TERMINAL_PROMPT=0 GIT_CONFIG_NOSYSTEM=1

die() { echo "push-receive: $*" >&2; exit 1; }
# drain_input: read (and drop) the pack a receive exits without taking. The container
# runtime keeps the exec's stdin open after we exit, so a sender with more than a pipe's
# worth left would block and the exec would never end (kubectl exec -i hangs the same
# way). Framed: just the pack (its length line first); the command's stdin after it is
# the sender's to close. Bounded by the stall timeout either way.
input_done=0 framed=0
drain_input() {
  [ "$input_done" = 0 ] || return 0
  input_done=1
  if [ "$framed" = 1 ]; then
    local length=""
    IFS= read -r length || return 0
    [[ $length =~ ^[0-9]+$ ]] || return 0
    timeout "$STALL" head -c "$length" >/dev/null 2>&1 || true
  else
    timeout "$STALL" cat >/dev/null 2>&1 || true
  fi
}
volume_full() {
  echo "push-receive: the store volume is full (No space left on device while $1); $SRC is unchanged. Free space (trampoline maintenance) or use a bigger volume (--store-size)." >&2
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
  [ -z "$out" ] || printf '%s\n' "$out"
}
# last_lines N TEXT: TEXT's last N lines on one line (for a message).
last_lines() {
  local lines=()
  mapfile -t lines <<<"$2"
  local from=$((${#lines[@]} > $1 ? ${#lines[@]} - $1 : 0))
  echo "${lines[*]:from}"
}
is_id() { [[ $1 =~ ^([0-9a-f]{40}|[0-9a-f]{64})$ ]]; }
# rm_if PATH...: remove those that exist, starting no process when none does (the sh
# adapter waits for every process a push starts).
rm_if() {
  local path todo=()
  for path in "$@"; do
    if [ -e "$path" ] || [ -L "$path" ]; then todo+=("$path"); fi
  done
  [ ${#todo[@]} = 0 ] || rm -rf -- "${todo[@]}"
}
# Messages of git runs go to the run dir (memory), never the volume: it may be full.
SCRATCH=$RUN
{ { [ -d "$SCRATCH" ] || mkdir -p "$SCRATCH"; } && [ -w "$SCRATCH" ]; } 2>/dev/null || SCRATCH=$TREES
# What index-pack says; one file per workspace, written under its lock and kept (removing
# it would cost a process per push).
PACK_LOG=$SCRATCH/.receive-pack.log
cd "$WORKSPACE" 2>/dev/null || die "$WORKSPACE is not mounted"

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
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 0
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
  # Our name, then the directory (one rm; it fails only if someone else's name is in it).
  [ -z "$held" ] || rm -fd -- "$LOCK/$me" "$LOCK" 2>/dev/null || true
  rm_if "$staging"
}

take_lock() {
  local deadline=$((SECONDS + LOCK_WAIT)) holder said=""
  [ -d "$TREES" ] || mkdir -p "$TREES" 2>/dev/null || attempt "creating $TREES" mkdir -p "$TREES"
  attempt "preparing the push lock" mkdir "$staging"
  : > "$staging/$me" || die "preparing the push lock failed"
  until mv -T "$staging" "$LOCK" 2>/dev/null; do
    holder=$(ls -A "$LOCK" 2>/dev/null | head -n 1) || true
    if [ -n "$holder" ] && ! holder_alive "$holder"; then
      if rm "$LOCK/$holder" 2>/dev/null; then rmdir "$LOCK" 2>/dev/null || true; fi
      continue
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "push-receive: another push (pid ${holder%%-*} in this pod) still holds $LOCK after ${LOCK_WAIT}s; $SRC is unchanged. Try again when it is done." >&2
      exit "$EXIT_BUSY"
    fi
    if [ -z "$said" ] && [ -n "$holder" ]; then
      echo "push-receive: waiting for another push to this workspace to finish (pid ${holder%%-*}; up to ${LOCK_WAIT}s)" >&2
      said=1
    fi
    sleep 0.2
  done
  held=1
  # Staging directories of killed waiters.
  local stale
  for stale in "$TREES"/.push-lock.*; do
    [ -e "$stale" ] && [ "$stale" != "$staging" ] && ! holder_alive "${stale##*/.push-lock.}" && rm -rf "$stale"
  done
  return 0
}

# --- the repository -----------------------------------------------------------------------
# rev REF: the object REF names, or `-`.
rev() { git rev-parse --verify --quiet "$1" 2>/dev/null || echo -; }

# load_refs: R_COMMIT R_PUSHED R_BASE R_BASE_TREE R_HEAD (refs/trampoline/pushed, its tree,
# base, its tree, HEAD), `-` for what does not exist; one git run when all do (every push
# after the first).
load_refs() {
  local out
  if out=$(git rev-parse refs/trampoline/pushed 'refs/trampoline/pushed^{tree}' refs/trampoline/base 'refs/trampoline/base^{tree}' HEAD 2>/dev/null); then
    { read -r R_COMMIT; read -r R_PUSHED; read -r R_BASE; read -r R_BASE_TREE; read -r R_HEAD; } <<<"$out"
  else
    R_COMMIT=$(rev refs/trampoline/pushed) R_PUSHED=$(rev 'refs/trampoline/pushed^{tree}')
    R_BASE=$(rev refs/trampoline/base) R_BASE_TREE=$(rev 'refs/trampoline/base^{tree}') R_HEAD=$(rev HEAD)
  fi
}

# head_branch: the branch HEAD names (read from the file: no git run), empty when detached.
head_branch() {
  local line=""
  { read -r line < "$GIT_DIR/HEAD"; } 2>/dev/null || true
  case $line in 'ref: refs/heads/'*) echo "${line#ref: refs/heads/}" ;; esac
}

# unchanged_since_push: the pod certainly has no changes to its files since the last push
# (load_refs first): the index is still the pushed tree, and `git status` sees no work-tree
# change and no untracked file. Two git runs that stat the files, where worktree_tree copies
# the index, stages everything and writes trees; status also keeps the refreshed stat data
# and untracked cache in the index (when it gets the index lock), so the next scan is cheap
# too. Any doubt (a change, a staged file, git failing) answers no: worktree_tree decides.
unchanged_since_push() {
  local out
  git diff-index --cached --quiet "$R_PUSHED" -- 2>/dev/null || return 1
  out=$(git status --porcelain --no-renames --untracked-files=normal --ignore-submodules=none 2>/dev/null) || return 1
  # A change is a line whose second column (work tree vs index) is not blank, `??` included;
  # the first (index vs HEAD) shows the pushed uncommitted changes. Paths with a newline
  # come quoted, so every line starts an entry.
  local changed=$'\n''.[^ ]'
  [[ ! $'\n'$out =~ $changed ]]
}

# worktree_tree: the tree `git add -A` would make of the work tree, in a copy of the index
# (its stat cache makes this cost a stat per file, plus hashing what changed).
worktree_tree() {
  local index=$GIT_DIR/trampoline-index.$$ tree
  rm_if "$index"
  [ ! -e "$GIT_DIR/index" ] || cp "$GIT_DIR/index" "$index"
  if ! tree=$(GIT_INDEX_FILE=$index git add -A -- . 2>&1 >/dev/null && GIT_INDEX_FILE=$index git write-tree 2>&1); then
    rm_if "$index"
    case $tree in *'No space left on device'*) volume_full "reading the work tree" ;; esac
    die "reading the work tree $SRC failed: $tree"
  fi
  rm_if "$index"
  echo "$tree"
}

# Leftovers of the symlink layout (trees under .trees/<id>), of index-pack runs that were
# cut short, and of temporary indexes.
tidy() {
  local stale
  for stale in "$TREES"/* "$TREES"/.tar-* "$TREES/.lock"; do
    [ -e "$stale" ] || [ -L "$stale" ] || continue
    [ "$stale" != "$PUSHED_FILE" ] || continue
    chmod -R u+w "$stale" 2>/dev/null || true
    rm -rf "$stale"
  done
  if [ -d "$GIT_DIR" ]; then rm_if "$GIT_DIR"/objects/pack/tmp_* "$GIT_DIR"/trampoline-index.*; fi
}

# init_repo BRANCH: a repository at $SRC (a real directory; the symlink of older versions
# is replaced).
init_repo() {
  if [ -L "$SRC" ]; then rm -f "$SRC"; fi
  if [ ! -d "$GIT_DIR" ]; then
    attempt "creating $SRC" mkdir -p "$SRC"
    attempt "creating the repository in $SRC" git init -q -b "$1"
    # The stat of untracked directories is cached: `git add -A` and status stay fast.
    git config core.untrackedCache true
    git config gc.autoDetach false
    # A full checkout (the first push) writes files in parallel, one worker per core.
    git config checkout.workers 0
  fi
}

# print_state [WORKTREE-TREE]: the lines documented above.
print_state() {
  local pushed commit base head branch work count=0
  load_refs
  commit=$R_COMMIT pushed=$R_PUSHED base=$R_BASE head=$R_HEAD
  branch=$(git symbolic-ref --quiet --short HEAD 2>/dev/null || echo -)
  work=${1:-$(worktree_tree)}
  if [ "$base" != - ] && [ "$head" != - ] && [ "$head" != "$base" ]; then
    count=$(git rev-list --count "$head" "^$base" 2>/dev/null || echo 1)
    [ "$count" != 0 ] || count=1 # HEAD moved elsewhere (reset, another branch): a change too
  fi
  printf 'pushed %s\ncommit %s\nbase %s\nhead %s\nbranch %s\nworktree %s\ncommits %s\nchanges\n' \
    "$pushed" "$commit" "$base" "$head" "$branch" "$work" "$count"
  if [ "$pushed" != - ] && [ "$pushed" != "$work" ]; then git diff-tree -r -z --no-renames "$pushed" "$work"; fi
}

# has_changes WORKTREE-TREE: the pod differs from what was pushed (files or commits).
# (load_refs first.)
has_changes() {
  [ "$R_PUSHED" != - ] || return 1
  [ "$R_PUSHED" != "$1" ] || [ "$R_HEAD" != "$R_BASE" ]
}

# --- the switch ---------------------------------------------------------------------------
# The journal: `<target tree> <target commit> <base> <branch> <from tree or -> <force 0|1>`.
# switch_to [--finish]: make the work tree, index and refs the journal's target. A normal
# switch is a two-tree merge from the pushed tree: only paths that differ are touched (time
# grows with the change), and a path changed in the pod meanwhile makes it fail before it
# writes anything (status 66, the journal removed). --finish (after a switch the pod died
# in) resets to the target instead, so running it again always completes it.
switch_to() {
  local tree commit base branch from force
  read -r tree commit base branch from force < "$JOURNAL"
  # Every step is checked: this runs where errexit does not apply (a `||` list), and a
  # failed step must leave the journal for the next receive to finish.
  if [ "${1:-}" != --finish ] && [ "$from" != - ] && [ "$force" = 0 ]; then
    if ! git read-tree -m -u "$from" "$tree"; then
      rm -f "$JOURNAL"
      return "$EXIT_CHANGED"
    fi
  else
    git read-tree --reset -u "$tree" || return 1
    # --force: exactly the pushed tree, untracked files gone too (ignored ones, e.g. build
    # results, stay). Without it there are none: the pod's changes were refused before.
    if [ "$force" = 1 ]; then git clean -fdq || return 1; fi
  fi
  # One ref transaction (each git run costs: the sh adapter waits for this).
  git update-ref --stdin <<<"update refs/heads/$branch $base
update refs/trampoline/base $base
update refs/trampoline/pushed $commit" || return 1
  [ "$(head_branch)" = "$branch" ] || git symbolic-ref HEAD refs/heads/"$branch" || return 1
  # A note for people and tests (the refs are the truth), then the journal is done.
  printf '%s %s %s\n' "$tree" "$commit" "$base" > "$PUSHED_FILE" || return 1
  rm -f "$JOURNAL"
}

# finish_switch: a switch the pod died in the middle of (journal left behind) is completed.
finish_switch() {
  [ -e "$JOURNAL" ] || return 0
  echo "push-receive: finishing the push that was interrupted in the pod ($(cut -d' ' -f1 "$JOURNAL"))" >&2
  local output
  output=$(trap '' HUP INT TERM PIPE; switch_to --finish 2>&1 </dev/null >/dev/null) ||
    die "finishing the interrupted push failed: $(last_lines 3 "$output")"
}

# missing_objects FROM TO: the first object TO needs that is not here (nothing when TO is
# complete), given that FROM (a tree, or -) is. Only what differs from FROM is looked at, so
# the cost grows with the change, not the tree. Submodule commits (gitlinks) are not objects
# of this repository.
missing_objects() {
  local from=$1 to=$2 listed
  if [ "$from" = - ]; then
    git rev-list --objects --missing=print "$to" 2>&1 | grep -m 1 -Ev '^[0-9a-f]{40}([0-9a-f]{24})?( |$)' || true
    return 0
  fi
  # diff-tree reads every tree on the way (a missing one is an error); the blobs it names
  # are checked in one batch.
  local mode id ids=() checked line
  listed=$(git diff-tree -r --no-renames --no-commit-id "$from" "$to" 2>&1) || { echo "${listed%%$'\n'*}"; return 0; }
  while read -r _ mode _ id _; do
    if [ -n "$id" ] && [ "$mode" != 160000 ] && [[ ! $id =~ ^0+$ ]]; then ids+=("$id"); fi
  done <<<"$listed"
  [ ${#ids[@]} -gt 0 ] || return 0
  local IFS=$'\n'
  checked=$(git cat-file --batch-check 2>&1 <<<"${ids[*]}")
  while IFS= read -r line; do
    case $line in *' missing') echo "$line"; return 0 ;; esac
  done <<<"$checked"
}

# --- a stalled stream ---------------------------------------------------------------------
# stall_watch PID: while index-pack (PID) reads the pack. When it has neither read nor
# written a byte for $STALL seconds, end it with SIGUSR1: nothing more will come.
stall_watch() {
  local pid=$1 io last="" idle=0
  while sleep 5; do
    io=$(grep -E '^(rchar|wchar):' "/proc/$pid/io" 2>/dev/null | tr '\n' ' ') || true
    [ -n "$io" ] || return 0 # index-pack is gone
    if [ "$io" = "$last" ]; then idle=$((idle + 5)); else idle=0 last=$io; fi
    if [ "$idle" -ge "$STALL" ]; then
      # The mark first: the receiver reads it as soon as index-pack dies of the signal.
      : > "$SCRATCH/.stalled.$$"
      kill -USR1 "$pid" 2>/dev/null || rm -f "$SCRATCH/.stalled.$$"
      return 0
    fi
  done
}

# take_pack: the pack on stdin into the repository. A few objects (the sender says how
# many) become loose objects, as git's own receive-pack does below 100: one pack per
# small push would pile up until gc repacked everything in the middle of some push.
take_pack() {
  if [[ $objects =~ ^[0-9]+$ ]] && [ "$objects" -lt 100 ]; then
    exec git unpack-objects -q
  fi
  exec git index-pack --stdin --fix-thin
}

# --- commands -----------------------------------------------------------------------------
cmd_state() {
  [ $# = 0 ] || die "usage: push-receive.sh state"
  if [ -e "$JOURNAL" ]; then
    trap 'release_lock' EXIT
    take_lock
    finish_switch
  fi
  if [ ! -d "$GIT_DIR" ]; then
    printf 'pushed -\ncommit -\nbase -\nhead -\nbranch -\nworktree -\ncommits 0\nchanges\n'
    return 0
  fi
  print_state
}

cmd_receive() {
  local tree="" base="" from="" branch="" name="" email="" force=0 framed=0 objects=""
  while [ $# -gt 0 ]; do
    case $1 in
      --tree) tree=${2:-}; shift 2 ;;
      --base) base=${2:-}; shift 2 ;;
      --from) from=${2:-}; shift 2 ;;
      --branch) branch=${2:-}; shift 2 ;;
      --name) name=${2:-}; shift 2 ;;
      --email) email=${2:-}; shift 2 ;;
      --force) force=1; shift ;;
      --framed) framed=1; shift ;;
      --objects) objects=${2:-}; shift 2 ;;
      --) shift; break ;;
      *) die "usage: push-receive.sh receive --tree W --base B [--from W0] [--branch NAME] [--name N --email E] [--force] (got '$1')" ;;
    esac
  done
  { is_id "$tree" && { is_id "$base" || [ "$base" = - ]; }; } || die "usage: receive needs --tree and --base as object ids (got '$tree' '$base')"
  [ -z "$from" ] || [ "$from" = - ] || is_id "$from" || die "--from must be an object id or - (got '$from')"
  local current_branch
  current_branch=$(head_branch)
  [ -n "${branch:-}" ] || branch=${current_branch:-trampoline}
  # (HEAD's branch was checked when it was pushed: only a new name costs a git run.)
  [ "$branch" = "$current_branch" ] || git check-ref-format --branch "$branch" >/dev/null 2>&1 || die "not a branch name: '$branch'"
  [ "$framed" = 0 ] || [ $# -gt 0 ] || die "--framed needs a command after --"
  [ "$framed" = 1 ] || [ $# = 0 ] || die "a command after -- needs --framed"

  watcher=""
  # Exiting before the pack was read (a refusal, a resend, a failure): the lock goes first,
  # then what the sender still sends is read (drain_input).
  # shellcheck disable=SC2154 # rc is the trap's own
  trap 'rc=$?; if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null || true; fi; release_lock; [ "$rc" = 0 ] || drain_input' EXIT
  take_lock
  tidy
  finish_switch
  init_repo "$branch"
  # The author of commits made in the pod; written only when it changed (a file of ours
  # remembers the last one, read without running git).
  local said=""
  [ ! -e "$GIT_DIR/trampoline-identity" ] || read -r said < "$GIT_DIR/trampoline-identity" || true
  if [ "$said" != "$name <$email>" ]; then
    [ -z "$name" ] || git config user.name "$name"
    [ -z "$email" ] || git config user.email "$email"
    printf '%s\n' "$name <$email>" > "$GIT_DIR/trampoline-identity"
  fi

  local current work=""
  load_refs
  current=$R_PUSHED
  if [ -n "$from" ] && [ "$from" != - ] && [ "$from" != "$current" ]; then
    print_state
    echo "push-receive: the pod's pushed tree is $current, not $from: resend" >&2
    exit "$EXIT_RESEND"
  fi
  if [ "$force" = 0 ] && [ "$current" != - ] && ! { [ "$R_HEAD" = "$R_BASE" ] && unchanged_since_push; }; then
    work=$(worktree_tree)
    if has_changes "$work"; then
      print_state "$work"
      exit "$EXIT_CHANGED"
    fi
  fi

  # The transfer: only adds objects. index-pack checks the pack's own checksum, so a stream
  # cut short fails here.
  local status=0 output
  exec 3<&0
  rm_if "$SCRATCH/.stalled.$$"
  local length=""
  if [ "$framed" = 1 ]; then
    # bash reads a line from a pipe byte by byte, and head -c reads no more than it
    # copies: what follows the pack stays on stdin for the command.
    IFS= read -r length <&3 || true
    [[ $length =~ ^[0-9]+$ ]] || die "--framed: the input does not start with the pack's length (got '${length:0:20}')"
    head -c "$length" <&3 | take_pack >/dev/null 2>"$PACK_LOG" &
  else
    take_pack <&3 >/dev/null 2>"$PACK_LOG" &
  fi
  local packer=$!
  [ "$framed" = 1 ] || exec 3<&-
  # Its output is not the connection's: a sleep it leaves behind must not keep the exec open.
  stall_watch "$packer" </dev/null >/dev/null 2>&1 &
  watcher=$!
  wait "$packer" || status=$?
  input_done=1
  kill "$watcher" 2>/dev/null || true
  watcher=""
  output=""
  [ ! -s "$PACK_LOG" ] || output=$(tail -n 5 "$PACK_LOG")
  if [ -e "$SCRATCH/.stalled.$$" ]; then
    rm_if "$SCRATCH/.stalled.$$" "$GIT_DIR"/objects/pack/tmp_*
    die "no data arrived for ${STALL}s: the sender of $tree is gone (killed, or its connection dropped without closing); $SRC is unchanged"
  fi
  if [ "$status" != 0 ]; then
    rm_if "$GIT_DIR"/objects/pack/tmp_*
    # The rest of the pack is unread, its length unknown here: read to the end (bounded).
    input_done=1
    timeout "$STALL" cat >/dev/null 2>&1 || true
    case $output in *'No space left on device'*) volume_full "receiving $tree" ;; esac
    die "the pack for $tree is corrupt or was cut short (git: $(tr '\n' ' ' <<<"$output")); $SRC is unchanged"
  fi
  # Complete? Every object of the new tree and the base commit must be here before anything
  # changes (a sender that assumed objects the pod lacks, or a damaged repository).
  local missing
  missing=$(missing_objects "$current" "$tree")
  # A base pushed before was complete then (the usual case: no commit since).
  if [ -z "$missing" ] && [ "$base" != - ] && [ "$base" != "$R_BASE" ]; then
    git cat-file -e "$base^{commit}" 2>/dev/null || missing="the base commit $base"
    [ -n "$missing" ] || missing=$(missing_objects "$tree" "$base^{tree}")
  fi
  if [ -n "$missing" ]; then
    print_state "${work:-}"
    echo "push-receive: objects of $tree are missing after the transfer (${missing:-the base commit}): resend" >&2
    exit "$EXIT_RESEND"
  fi
  if [ "$base" = - ]; then
    # No commits in the sender's repository: the pushed tree becomes a root commit.
    base=$(attempt "recording the pushed tree" git commit-tree "$tree" -m 'trampoline: the pushed work tree (no commits yet)')
  fi
  # A new base: its tree, and whether its parents are here (else it is a shallow commit).
  local base_tree=$R_BASE_TREE
  if [ "$base" != "$R_BASE" ]; then
    local key value parents=() parent
    base_tree=""
    while read -r key value; do
      [ -n "$key" ] || break # the headers end at an empty line
      case $key in tree) base_tree=$value ;; parent) parents+=("$value") ;; esac
    done < <(git cat-file commit "$base")
    [ -n "$base_tree" ] || die "reading the base commit $base failed"
    for parent in "${parents[@]}"; do
      if ! git cat-file -e "$parent" 2>/dev/null; then
        grep -qx "$base" "$GIT_DIR/shallow" 2>/dev/null || echo "$base" >> "$GIT_DIR/shallow"
        break
      fi
    done
  fi
  local commit=$base
  if [ "$base_tree" != "$tree" ]; then
    commit=$(attempt "recording the pushed tree" git commit-tree "$tree" -p "$base" -m 'trampoline: the pushed work tree (uncommitted changes of the push)')
  fi

  # The switch: journaled, and nothing the connection does can stop it halfway.
  trap '' HUP INT TERM PIPE
  local journal
  printf -v journal '%s %s %s %s %s %s' "$tree" "$commit" "$base" "$branch" "$current" "$force"
  # Written by bash itself; only a failure runs it again through attempt, to say why.
  { echo "$journal" > "$JOURNAL.new"; } 2>/dev/null || attempt "journaling the push" echo "$journal" > "$JOURNAL.new"
  attempt "journaling the push" mv -f "$JOURNAL.new" "$JOURNAL"
  status=0
  # Its messages in memory (the volume may be full): no file to write and remove.
  output=$(switch_to 2>&1 </dev/null >/dev/null) || status=$?
  if [ "$status" = "$EXIT_CHANGED" ]; then
    print_state
    exit "$EXIT_CHANGED"
  fi
  if [ "$status" != 0 ]; then
    output=$(last_lines 3 "$output")
    case $output in *'No space left on device'*) volume_full "updating $SRC (the next push finishes it)" ;; esac
    die "updating $SRC to $tree failed ($output); the next push finishes it"
  fi
  # Loose objects and small packs pile up: git packs them when there are enough. Checked on
  # one framed (sh adapter) push in 16, every other push.
  if [ "$framed" = 0 ] || [ $((RANDOM % 16)) = 0 ]; then git gc --auto --quiet </dev/null >/dev/null 2>&1 || true; fi
  # The idle monitor counts a recent push as activity (opening with truncation sets the mtime).
  { [ -d "$RUN" ] || mkdir -p "$RUN"; } 2>/dev/null && { : > "$RUN/last-push"; } 2>/dev/null || true
  if [ "$framed" = 1 ]; then
    # The command runs as this process: the lock is released first (its name would stay
    # alive in us), and the signals the switch ignored are its own again.
    release_lock
    held=""
    trap - EXIT HUP INT TERM PIPE
    echo trampoline-pushed
    exec "$@" <&3 3<&-
  fi
}

cmd_adopt() {
  local tree="" head=""
  while [ $# -gt 0 ]; do
    case $1 in
      --tree) tree=${2:-}; shift 2 ;;
      --head) head=${2:-}; shift 2 ;;
      *) die "usage: push-receive.sh adopt --tree P --head H" ;;
    esac
  done
  { is_id "$tree" && is_id "$head"; } || die "usage: push-receive.sh adopt --tree P --head H (object ids)"
  trap 'release_lock' EXIT
  take_lock
  finish_switch
  [ -d "$GIT_DIR" ] || die "nothing was pushed to $SRC"
  local work
  work=$(worktree_tree)
  if [ "$work" != "$tree" ] || [ "$(rev HEAD)" != "$head" ]; then
    print_state "$work"
    echo "push-receive: $SRC changed again since; pull again" >&2
    exit "$EXIT_CHANGED"
  fi
  local commit=$head
  [ "$(git rev-parse "$head^{tree}")" = "$tree" ] ||
    commit=$(attempt "recording the pod's tree" git commit-tree "$tree" -p "$head" -m 'trampoline: the work tree as pulled')
  # The index becomes the tree (git diff in the pod shows changes since this point again).
  attempt "updating the index" git add -A -- .
  git update-ref refs/trampoline/base "$head"
  git update-ref refs/trampoline/pushed "$commit"
  printf '%s %s %s\n' "$tree" "$commit" "$head" > "$PUSHED_FILE"
}

sub=${1:-}
[ $# = 0 ] || shift
case $sub in
  receive) cmd_receive "$@" ;;
  state) cmd_state "$@" ;;
  adopt) cmd_adopt "$@" ;;
  *) die "usage: push-receive.sh receive|state|adopt ... (see its header)" ;;
esac
