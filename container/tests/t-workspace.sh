# shellcheck shell=bash
# The workspace (push-receive.sh): /workspace/src a git work tree at a fixed path, pushed
# incrementally as git packs, pod changes detected and never overwritten without --force,
# interrupted pushes leaving the previous state, an interrupted switch finished later.
# Needs no daemon: push-receive.sh uses bash, coreutils and git only (as UID 1000, with
# only the toolset on PATH). Each check works in a workspace of its own under $T.
# shellcheck source=workspace-lib.sh
source "$HERE/workspace-lib.sh"

# ws_fresh: a new empty workspace (as store-init leaves one) in WS, and a repository in REPO.
# (Each check runs in a subshell: the names are unique, not counted.)
ws_fresh() {
  WS=$(mktemp -d "$T/wsvol.XXXXXX") WS_RUN=$(mktemp -d "$T/wsrun.XXXXXX") REPO=$(mktemp -d "$T/wsrepo.XXXXXX")
  chown 1000:1000 "$WS" "$WS_RUN" && chmod 0755 "$WS" "$WS_RUN" || return 1
  install -d -m 0755 -o 1000 -g 1000 "$WS/.trees"
  git init -q -b main "$REPO"
  git -C "$REPO" config user.email test@example.invalid
  git -C "$REPO" config user.name Test
  mkdir -p "$REPO/src/deep/er" "$REPO/bin" "$REPO/empty"
  echo 'build/' > "$REPO/.gitignore"
  for i in $(seq 1 50); do echo "file $i" > "$REPO/src/f$i.txt"; done
  echo 'deep' > "$REPO/src/deep/er/leaf"
  printf '#!/bin/sh\necho run\n' > "$REPO/bin/run" && chmod 755 "$REPO/bin/run" || return 1
  head -c 3000 /dev/urandom > "$REPO/blob.bin"
  ln -s src/f1.txt "$REPO/link"
  ln -s deep/er "$REPO/src/dirlink"
  git -C "$REPO" add -A && git -C "$REPO" commit -qm one
}
git_as_user() { ws_in_pod git "$@"; }

t_ws_first_push() {
  ws_fresh
  ws_push "$REPO"
  [ -d "$WS/src" ] && [ ! -L "$WS/src" ] && [ -d "$WS/src/.git" ] || return 1
  ws_same "$REPO" "$(git -C "$REPO" rev-parse 'HEAD^{tree}')" "$WS/src"
  [ ! -e "$WS/src/empty" ] # git has no empty directories
  [ "$(stat -c %u "$WS/src/src/f1.txt")" = 1000 ]
  # A git work tree at the pushed commit: HEAD, the branch, the author for pod commits.
  [ "$(git_as_user rev-parse HEAD)" = "$(git -C "$REPO" rev-parse HEAD)" ]
  [ "$(git_as_user symbolic-ref --short HEAD)" = main ]
  [ "$(git_as_user config user.email)" = test@example.invalid ]
  [ -z "$(git_as_user status --porcelain)" ]
  # Shallow: a pushed commit whose parent never came is a root to the pod's git.
  echo two >> "$REPO/src/f2.txt" && git -C "$REPO" commit -qam two || return 1
  echo three >> "$REPO/src/f2.txt" && git -C "$REPO" commit -qam three || return 1
  ws_push "$REPO"
  grep -qx "$(git -C "$REPO" rev-parse HEAD)" "$WS/src/.git/shallow"
  [ "$(git_as_user log --format=%s | tr '\n' ' ')" = 'three ' ]
  git_as_user fsck --connectivity-only --no-dangling
  [ -e "$WS_RUN/last-push" ]
  ws_receive state > "$T/ws-state"
  grep -qx "pushed $(git -C "$REPO" rev-parse 'HEAD^{tree}')" "$T/ws-state"
  grep -qx 'commits 0' "$T/ws-state"
}
check "workspace: a first push makes /workspace/src a git work tree at the pushed commit, file by file the tree (modes, symlinks, no empty dirs)" t_ws_first_push

t_ws_incremental() {
  local inode_src inode_same full tree
  ws_fresh
  head -c 2000000 /dev/urandom > "$REPO/big.bin" && git -C "$REPO" add -A && git -C "$REPO" commit -qm big || return 1
  ws_push "$REPO"
  full=$WS_PACK_BYTES
  inode_src=$(stat -c %i "$WS/src") inode_same=$(stat -c %i "$WS/src/src/f3.txt")
  # Uncommitted changes of every kind, pushed as the work tree.
  echo edited >> "$REPO/src/f1.txt"
  rm "$REPO/src/f5.txt"
  git -C "$REPO" mv -k src/f6.txt src/renamed.txt
  chmod +x "$REPO/src/f7.txt"
  ln -sfn src/f2.txt "$REPO/link"
  rm "$REPO/src/f8.txt" && ln -s f9.txt "$REPO/src/f8.txt" || return 1
  rm -r "$REPO/src/deep/er" && echo now-a-file > "$REPO/src/deep/er" || return 1
  echo new > "$REPO/src/new.txt"
  mkdir -p "$REPO/build" && echo ignored > "$REPO/build/out" || return 1
  tree=$(ws_tree "$REPO")
  ws_push "$REPO"
  ws_same "$REPO" "$tree" "$WS/src"
  # In place: the same directory, untouched files untouched; only changed objects travelled.
  [ "$(stat -c %i "$WS/src")" = "$inode_src" ] && [ "$(stat -c %i "$WS/src/src/f3.txt")" = "$inode_same" ] || return 1
  echo "full pack $full bytes, incremental $WS_PACK_BYTES"
  [ "$WS_PACK_BYTES" -lt 20000 ] && [ "$full" -gt 2000000 ] || return 1
  # The pod's HEAD is the local HEAD; the uncommitted changes are the index's (git diff
  # in the pod shows only what the pod changes from here).
  [ "$(git_as_user rev-parse HEAD)" = "$(git -C "$REPO" rev-parse HEAD)" ]
  [ -z "$(git_as_user diff --name-only)" ] && [ -n "$(git_as_user diff --cached --name-only)" ] || return 1
  grep -qx "pushed $tree" <(ws_receive state)
  # Back to the committed tree: deletions and type changes undone too.
  git -C "$REPO" reset -q --hard && git -C "$REPO" clean -qfd || return 1
  ws_push "$REPO"
  ws_same "$REPO" "$(git -C "$REPO" rev-parse 'HEAD^{tree}')" "$WS/src"
}
check "workspace: an incremental push sends only changed objects and updates in place (edits, deletions, renames, modes, symlinks, type changes)" t_ws_incremental

t_ws_pod_changes() {
  local tree code=0 out
  ws_fresh
  ws_push "$REPO"
  tree=$(git -C "$REPO" rev-parse 'HEAD^{tree}')
  # An agent in the pod: an edit, a new file, a deletion, and an ignored build result.
  ws_in_pod sh -c 'echo agent >> src/f1.txt && echo mine > agent.txt && rm src/f2.txt && mkdir -p build && echo out > build/x'
  out=$(ws_receive state | tr '\0' '\n')
  echo "$out"
  grep -qx 'changes' <<<"$out" && grep -qx 'src/f1.txt' <<<"$out" && grep -qx 'agent.txt' <<<"$out" && grep -qx 'src/f2.txt' <<<"$out" || return 1
  ! grep -q 'build/x' <<<"$out" || return 1
  # A local change pushed now is refused (66), naming the files; the pod is untouched.
  echo local >> "$REPO/src/f3.txt"
  ws_push "$REPO" >"$T/ws-refused.out" 2>"$T/logs/ws-refused" || code=$?
  [ "$code" = 66 ]
  tr '\0' '\n' <"$T/ws-refused.out" | grep -qx 'src/f1.txt'
  grep -q agent "$WS/src/src/f1.txt" && [ -e "$WS/src/agent.txt" ] && [ ! -e "$WS/src/src/f2.txt" ] || return 1
  grep -qx "pushed $tree" <(ws_receive state)
  # --force: exactly the local tree; untracked files go, ignored ones stay.
  ws_push "$REPO" --force
  ws_same "$REPO" "$(ws_tree "$REPO")" "$WS/src" build
  [ -e "$WS/src/build/x" ]
}
check "workspace: edits, new files and deletions made in the pod are reported and refuse a push (66); --force overwrites them, keeping ignored files" t_ws_pod_changes

# The receive's quick check (git status and diff-index on the pod's index) must see every
# kind of change alone, as the full scan does: one at a time, each refuses (66); undone,
# the next push goes through. An ignored file alone is no change.
t_ws_pod_change_kinds() {
  local change code n=0
  ws_fresh
  ws_push "$REPO"
  ws_in_pod sh -c 'mkdir -p build && echo out > build/x'
  echo ignored >> "$REPO/src/f3.txt"
  ws_push "$REPO"
  for change in 'echo agent >> src/f1.txt' 'chmod +x src/f1.txt' 'rm src/f1.txt && ln -s f2.txt src/f1.txt' \
    'rm link' 'rm -r src/deep' 'mkdir -p new/deeper && echo x > new/deeper/y' \
    'git config status.showUntrackedFiles no && echo x > untracked.txt' 'git commit -qm pod --allow-empty'; do
    n=$((n + 1))
    ws_in_pod sh -c "$change"
    echo "local $n" >> "$REPO/src/f3.txt"
    code=0
    ws_push "$REPO" >/dev/null 2>"$T/logs/ws-kind-$n" || code=$?
    [ "$code" = 66 ] || { echo "not refused (exit $code): $change"; return 1; }
    # Undone: the work tree, index and HEAD as pushed again (the ignored file stays).
    ws_in_pod sh -c 'git reset -q --soft refs/trampoline/base && git checkout -q -- . && git clean -qfd && git config --unset status.showUntrackedFiles; true'
  done
  ws_push "$REPO"
  ws_same "$REPO" "$(ws_tree "$REPO")" "$WS/src" build
  [ -e "$WS/src/build/x" ]
}
check "workspace: each kind of change in the pod alone refuses a push (edit, mode, type, deletions, untracked files however status is configured, a commit); an ignored file does not" t_ws_pod_change_kinds

t_ws_pod_commit() {
  local out code=0 head work
  ws_fresh
  ws_push "$REPO"
  ws_in_pod sh -c 'echo agent >> src/f1.txt && git commit -qam "agent commit"'
  out=$(ws_receive state)
  grep -qx 'commits 1' <<<"$out"
  [ "$(git_as_user log -1 --format='%an <%ae> %s')" = 'Test <test@example.invalid> agent commit' ]
  ws_push "$REPO" >/dev/null 2>&1 || code=$?
  [ "$code" = 66 ]
  # The commit comes home as a commit (the pod makes a pack of base..HEAD), then adopt
  # records the pod's state as pushed: the next push is not refused.
  head=$(git_as_user rev-parse HEAD)
  work=$(sed -n 's/^worktree //p' <<<"$out")
  printf '%s\n^%s\n' "$head" "$(git -C "$REPO" rev-parse HEAD)" | git_as_user pack-objects --stdout --revs --thin -q |
    git -C "$REPO" index-pack --stdin --fix-thin >/dev/null
  git -C "$REPO" merge -q --ff-only "$head"
  [ "$(git -C "$REPO" log -1 --format=%s)" = 'agent commit' ]
  ws_receive adopt --tree "$work" --head "$head"
  [ -z "$(git_as_user status --porcelain)" ]
  echo after >> "$REPO/src/f4.txt"
  ws_push "$REPO"
  ws_same "$REPO" "$(ws_tree "$REPO")" "$WS/src"
}
check "workspace: a commit made in the pod is reported and refuses a push; it comes home as a commit, and after adopt the next push goes through" t_ws_pod_commit

t_ws_pod_diff_applies() {
  local out pushed work
  ws_fresh
  ws_push "$REPO"
  ws_in_pod sh -c 'echo agent >> src/f1.txt && head -c 500 /dev/urandom > blob.bin && rm src/f2.txt && head -c 700 /dev/urandom > new.bin'
  out=$(ws_receive state)
  pushed=$(sed -n 's/^pushed //p' <<<"$out") work=$(sed -n 's/^worktree //p' <<<"$out")
  # What pull applies locally: a binary patch of the pod's changes.
  git_as_user diff --binary --full-index "$pushed" "$work" > "$T/ws.patch"
  git -C "$REPO" apply --check "$T/ws.patch"
  git -C "$REPO" apply "$T/ws.patch"
  [ "$(ws_tree "$REPO")" = "$work" ]
  ws_same "$REPO" "$work" "$WS/src"
}
check "workspace: the pod's changes as a binary patch apply locally (text, binary, deletion, new file) to exactly the pod's tree" t_ws_pod_diff_applies

t_ws_cut_short() {
  local tree before cut
  ws_fresh
  ws_push "$REPO"
  before=$(ws_pushed)
  head -c 100000 /dev/urandom > "$REPO/blob.bin" && echo x >> "$REPO/src/f1.txt" || return 1
  tree=$(ws_tree "$REPO")
  ws_pack "$REPO" "$tree" "$(git -C "$REPO" rev-parse HEAD)" "$before" > "$T/ws.pack"
  cut=$(( $(stat -c %s "$T/ws.pack") / 2 ))
  ! head -c "$cut" "$T/ws.pack" | ws_receive receive --tree "$tree" --base "$(git -C "$REPO" rev-parse HEAD)" --from "$before" 2>"$T/logs/ws-cut" || return 1
  grep -q 'corrupt or was cut short' "$T/logs/ws-cut"
  # The same through unpack-objects (a pack of few objects).
  ! head -c "$cut" "$T/ws.pack" | ws_receive receive --tree "$tree" --base "$(git -C "$REPO" rev-parse HEAD)" --from "$before" --objects 3 2>"$T/logs/ws-cut-loose" || return 1
  grep -q 'corrupt or was cut short' "$T/logs/ws-cut-loose"
  ! head -c 5000 /dev/urandom | ws_receive receive --tree "$tree" --base "$(git -C "$REPO" rev-parse HEAD)" --from "$before" 2>"$T/logs/ws-random" || return 1
  grep -q 'corrupt or was cut short' "$T/logs/ws-random"
  # Nothing changed, nothing is left, and the lock is free.
  [ "$(ws_pushed)" = "$before" ]
  ws_same "$REPO" "$before" "$WS/src"
  ! compgen -G "$WS/src/.git/objects/pack/tmp_*" && [ ! -e "$WS/.trees/.push-lock" ] || return 1
  grep -qx "worktree $before" <(ws_receive state)
  ws_push "$REPO"
  ws_same "$REPO" "$tree" "$WS/src"
}
check "workspace: a pack cut short or corrupt fails clearly; the previous state stays whole; the next push works" t_ws_cut_short

t_ws_resend() {
  local before tree code=0
  ws_fresh
  ws_push "$REPO"
  before=$(ws_pushed)
  echo changed >> "$REPO/src/f1.txt" && mkdir -p "$REPO/new/dir" && echo x > "$REPO/new/dir/file" || return 1
  tree=$(ws_tree "$REPO")
  # A sender that wrongly believes the pod has everything: an empty pack. Nothing changes,
  # and the pod says what it has (67) so the sender can send what it lacks.
  ws_pack "$REPO" "$tree" "$(git -C "$REPO" rev-parse HEAD)" "$tree" |
    ws_receive receive --tree "$tree" --base "$(git -C "$REPO" rev-parse HEAD)" --from "$before" >"$T/ws-resend.out" 2>"$T/logs/ws-resend" || code=$?
  [ "$code" = 67 ] && grep -q 'missing after the transfer' "$T/logs/ws-resend" || return 1
  grep -qx "pushed $before" "$T/ws-resend.out"
  ws_same "$REPO" "$before" "$WS/src"
  # A sender that believes the pod has another tree: 67 before any transfer.
  code=0
  ws_pack "$REPO" "$tree" "$(git -C "$REPO" rev-parse HEAD)" - |
    ws_receive receive --tree "$tree" --base "$(git -C "$REPO" rev-parse HEAD)" --from "$tree" >/dev/null 2>&1 || code=$?
  [ "$code" = 67 ]
  ws_push "$REPO"
  ws_same "$REPO" "$tree" "$WS/src"
}
check "workspace: a pack missing objects the pod lacks, or a sender wrong about the pod's tree, gets 67 and the pod's state; nothing changes" t_ws_resend

t_ws_stalled_and_killed() {
  local tree before pusher producer
  ws_fresh
  ws_push "$REPO"
  before=$(ws_pushed)
  echo x >> "$REPO/src/f1.txt"
  tree=$(ws_tree "$REPO")
  ws_pack "$REPO" "$tree" "$(git -C "$REPO" rev-parse HEAD)" "$before" > "$T/ws.pack"
  rm -f "$T/ws.fifo" && mkfifo "$T/ws.fifo" || return 1
  # A sender that stops mid-pack without closing: the stall watch ends it.
  (head -c 100 "$T/ws.pack"; exec sleep 60) > "$T/ws.fifo" &
  producer=$!
  ! WS_EXTRA=TRAMPOLINE_PUSH_STALL=5 ws_receive receive --tree "$tree" --base "$(git -C "$REPO" rev-parse HEAD)" --from "$before" < "$T/ws.fifo" 2>"$T/logs/ws-stall" || return 1
  kill_tree "$producer"; wait "$producer" 2>/dev/null || true
  grep -q 'no data arrived for 5s' "$T/logs/ws-stall"
  [ "$(ws_pushed)" = "$before" ] && [ ! -e "$WS/.trees/.push-lock" ] || return 1
  # A receiver killed mid-transfer: the previous state, and the next push takes the lock.
  (head -c 100 "$T/ws.pack"; exec sleep 60) > "$T/ws.fifo" &
  producer=$!
  ws_receive receive --tree "$tree" --base "$(git -C "$REPO" rev-parse HEAD)" --from "$before" < "$T/ws.fifo" 2>/dev/null &
  pusher=$!
  poll 120 [ -d "$WS/.trees/.push-lock" ]
  kill_tree "$pusher"; kill_tree "$producer"; wait "$pusher" "$producer" 2>/dev/null || true
  ws_same "$REPO" "$before" "$WS/src"
  ws_push "$REPO"
  ws_same "$REPO" "$tree" "$WS/src"
}
check "workspace: a stalled sender is dropped after TRAMPOLINE_PUSH_STALL, a killed receiver leaves the previous state; the next push works" t_ws_stalled_and_killed

t_ws_switch_finished() {
  local before tree commit
  ws_fresh
  ws_push "$REPO"
  before=$(ws_pushed)
  # The pod died in the middle of a switch: objects in, journal written, some files updated.
  echo two >> "$REPO/src/f1.txt" && git -C "$REPO" rm -q src/f2.txt && echo new > "$REPO/src/new.txt" && git -C "$REPO" add -A && git -C "$REPO" commit -qm two || return 1
  tree=$(git -C "$REPO" rev-parse 'HEAD^{tree}') commit=$(git -C "$REPO" rev-parse HEAD)
  ws_pack "$REPO" "$tree" "$commit" "$before" | ws_in_pod git index-pack --stdin >/dev/null
  ws_in_pod sh -c 'echo two >> src/f1.txt && echo new > src/new.txt'
  ws_in_pod sh -c "echo '$tree $commit $commit main $before 0' > ../.trees/.switch"
  ws_receive state > "$T/ws-state" 2>"$T/logs/ws-finish"
  grep -q 'finishing the push that was interrupted' "$T/logs/ws-finish"
  grep -qx "pushed $tree" "$T/ws-state" && grep -qx "worktree $tree" "$T/ws-state" && grep -qx "head $commit" "$T/ws-state" || return 1
  ws_same "$REPO" "$tree" "$WS/src"
  [ ! -e "$WS/.trees/.switch" ]
}
check "workspace: a switch the pod died in (journal left) is finished by the next state or push" t_ws_switch_finished

t_ws_busy_and_migrate() {
  local tree code=0 holder
  ws_fresh
  # The symlink layout of older versions is replaced by the work tree.
  tree=$(git -C "$REPO" rev-parse 'HEAD^{tree}')
  install -d -o 1000 -g 1000 "$WS/.trees/$tree"
  echo old > "$WS/.trees/$tree/README" && ln -s "$WS/.trees/$tree" "$WS/src" || return 1
  ws_push "$REPO"
  [ ! -L "$WS/src" ] && ws_same "$REPO" "$tree" "$WS/src" || return 1
  [ "$(ls "$WS/.trees")" = pushed ]
  # A live holder keeps the lock: a second push waits (bounded) and ends with 75.
  sleep 60 &
  holder=$!
  install -d -o 1000 -g 1000 "$WS/.trees/.push-lock"
  touch "$WS/.trees/.push-lock/$holder-$(cut -d' ' -f22 "/proc/$holder/stat")"
  echo x >> "$REPO/src/f1.txt"
  WS_EXTRA=TRAMPOLINE_PUSH_LOCK_WAIT=1 ws_push "$REPO" 2>"$T/logs/ws-busy" || code=$?
  kill "$holder"; wait "$holder" 2>/dev/null || true
  [ "$code" = 75 ] && grep -q 'still holds' "$T/logs/ws-busy" || return 1
  ws_push "$REPO"
  ws_same "$REPO" "$(ws_tree "$REPO")" "$WS/src"
}
check "workspace: the symlink layout is migrated; a held lock makes a push wait and end with 75" t_ws_busy_and_migrate

t_ws_framed() {
  local tree base out len packs
  ws_fresh
  ws_push "$REPO"
  echo framed >> "$REPO/src/f1.txt"
  tree=$(ws_tree "$REPO") base=$(git -C "$REPO" rev-parse HEAD)
  ws_pack "$REPO" "$tree" "$base" "$(ws_pushed)" > "$T/ws.pack"
  len=$(stat -c %s "$T/ws.pack")
  packs=$(find "$WS/src/.git/objects/pack" -name '*.pack' | wc -l)
  # One exec for the sh adapter: length, pack, then the command's own stdin. The command
  # goes to the work tree itself, as the adapter's does (the exec's directory is not it).
  out=$({ echo "$len"; cat "$T/ws.pack"; printf 'input for the command\n'; } |
    ws_receive receive --tree "$tree" --base "$base" --from "$(ws_pushed)" --branch main --objects 4 --framed -- \
      bash -c 'cd "$0" && cat; tail -n 1 src/f1.txt; test ! -e ../.trees/.push-lock && echo unlocked; grep "^SigIgn" /proc/self/status' "$WS/src" 2>"$T/logs/ws-framed")
  echo "$out"
  [ "$(head -n 1 <<<"$out")" = trampoline-pushed ]
  grep -qx 'input for the command' <<<"$out" && grep -qx framed <<<"$out" && grep -qx unlocked <<<"$out" || return 1
  grep -qx $'SigIgn:\t0000000000000000' <<<"$out"
  ws_same "$REPO" "$tree" "$WS/src"
  [ "$(find "$WS/src/.git/objects/pack" -name '*.pack' | wc -l)" = "$packs" ] # a few objects: loose, no pack of their own
  # Refused: no marker line, the state instead, and the command never runs.
  ws_in_pod sh -c 'echo agent >> src/f2.txt'
  echo more >> "$REPO/src/f1.txt"
  tree=$(ws_tree "$REPO")
  ws_pack "$REPO" "$tree" "$base" "$(ws_pushed)" > "$T/ws.pack"
  len=$(stat -c %s "$T/ws.pack")
  code=0
  { echo "$len"; cat "$T/ws.pack"; } | ws_receive receive --tree "$tree" --base "$base" --from "$(ws_pushed)" --framed -- touch "$T/ran" >"$T/ws-framed.out" 2>/dev/null || code=$?
  [ "$code" = 66 ] && [ ! -e "$T/ran" ] && [ "$(head -n 1 "$T/ws-framed.out")" = "pushed $(ws_pushed)" ]
}
check "workspace: --framed pushes then runs the command in the same exec (its stdin after the pack, the lock released, signals its own); a refusal runs nothing" t_ws_framed
