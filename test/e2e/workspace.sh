#!/usr/bin/env bash
# shellcheck shell=bash
# test/e2e/workspace.sh: sourced by test.sh; workspace_journey WORK --name INSTANCE -n NAMESPACE.
# shellcheck disable=SC2154 # root: test.sh's
# The pod's workspace as a git work tree: incremental pushes (only changed objects travel),
# the same tree file by file at a stable path, an agent's edits in the pod detected (push
# and the sh adapter refuse, naming them), shown by diff and brought home by pull (text,
# binary, deletion, new file), a local edit to the same file reported and never
# overwritten, and a commit made in the pod coming back as a commit (fast-forward, or a
# branch when the histories diverged). Runs in the project test.sh made (cwd).

# ws_e2e_listing DIR: every file under DIR with its sha256, executables and symlinks marked
# (.git and build results apart). The same command locally and in the pod.
ws_e2e_listing_script='cd "$1" && { find . \( -path ./.git -o -name "result*" \) -prune -o -type f -print0 | sort -z | xargs -0 -r sha256sum;
  find . \( -path ./.git -o -name "result*" \) -prune -o -type l -printf "%p -> %l\n" -o -type f -perm -u+x -printf "%p x\n" | sort; }'
ws_e2e_same() {
  local here pod
  here=$(sh -c "$ws_e2e_listing_script" _ "$PWD")
  pod=$(tramp shell "$@" -- sh -c "$ws_e2e_listing_script" _ /workspace/src)
  [ -n "$here" ] && [ "$here" = "$pod" ] || { diff <(echo "$here") <(echo "$pod") | head -n 20; return 1; }
}

# ws_e2e_diff_has LINE ARGS...: trampoline diff prints LINE.
ws_e2e_diff_has() {
  local line=$1
  shift
  tramp diff "$@" | grep -qxF -- "$line"
}

workspace_journey() {
  local work=$1 out code full inc inode start name
  shift
  name=$(journey_arg --name "$@")
  start=$(git rev-parse HEAD)
  local sh_env=(TRAMPOLINE_NAME="$name" TRAMPOLINE_NAMESPACE="$(journey_arg -n "$@")")
  local ident=(--git-name "Pod Agent" --git-email agent@e2e.invalid)
  # A known start: exactly this work tree in the pod, whatever earlier journeys left there.
  tramp push-tarball "$@" --worktree --force --quiet >/dev/null || { fail "workspace: the first push"; return 0; }

  log "workspace: a full push, then one changed file"
  mkdir -p ws/sub
  for i in $(seq 1 300); do echo "line $i of file $i" >"ws/sub/f$i.txt"; done
  head -c 300000 /dev/urandom >ws/big.bin
  printf '#!/bin/sh\necho hi\n' >ws/run.sh && chmod +x ws/run.sh
  ln -sfn sub/f1.txt ws/link
  git add -A && git -c user.email=e2e@trampoline -c user.name=e2e commit -qm "workspace files"
  out=$(tramp push-tarball "$@" "${ident[@]}" --json) || fail "push-tarball of the new files"
  full=$(json_field bytes <<<"$out")
  check "the pod's HEAD is the local HEAD" test "$(tramp shell "$@" -- git -C /workspace/src rev-parse HEAD)" = "$(git rev-parse HEAD)"
  check "the pushed tree is the work tree, file by file" ws_e2e_same "$@"
  inode=$(tramp shell "$@" -- stat -c %i /workspace/src)
  echo "edited" >>ws/sub/f7.txt
  out=$(tramp push-tarball "$@" --worktree --json) || fail "push-tarball --worktree after a one-file edit"
  inc=$(json_field bytes <<<"$out")
  # The changed file's blob and the trees on its path (ws/sub's lists 300 entries).
  check "after a one-file edit only the changed objects travel ($inc bytes, the full push $full)" test "$inc" -lt 16384 -a "$((inc * 20))" -lt "$full"
  check "and the trees are equal file by file" ws_e2e_same "$@"
  check "the path Claude Code sees is stable: same directory (inode $inode) after pushes" \
    test "$(tramp shell "$@" -- sh -c 'stat -c %i /workspace/src; readlink -f /workspace/src')" = "$inode"$'\n'/workspace/src
  rm ws/sub/f9.txt && git mv -k ws/sub/f10.txt ws/sub/renamed.txt && chmod +x ws/sub/f11.txt && ln -sfn sub/f2.txt ws/link
  tramp push-tarball "$@" --worktree --quiet >/dev/null || fail "push-tarball of a deletion, a rename, a mode and a symlink change"
  check "deletions, renames, modes and symlinks arrive, file by file" ws_e2e_same "$@"

  log "workspace: an agent's edits in the pod"
  tramp shell "$@" -- sh -c 'cd /workspace/src && echo "agent line" >>ws/sub/f2.txt && head -c 2000 /dev/urandom >ws/big.bin && rm ws/sub/f3.txt && echo new >ws/agent-new.txt && head -c 500 /dev/urandom >ws/agent.bin'
  echo "local line" >>ws/sub/f4.txt
  code=0
  tramp push-tarball "$@" --worktree --quiet >/dev/null 2>"$work/ws-refused.err" || code=$?
  check "a push over the pod's changes is refused (exit 8, got $code)" test "$code" = 8
  check "and names the changed files" bash -c 'grep -q "ws/sub/f2.txt" "$1" && grep -q "ws/agent-new.txt" "$1" && grep -q "ws/sub/f3.txt" "$1"' _ "$work/ws-refused.err"
  check "and the pod still has the agent's edit" tramp shell "$@" -- grep -qx "agent line" /workspace/src/ws/sub/f2.txt
  code=0
  env "${sh_env[@]}" "$root/bin/trampoline-sh" -c 'echo ran' >"$work/ws-sh.out" 2>"$work/ws-sh.err" || code=$?
  check "the sh adapter reports the same instead of overwriting (exit 8, got $code)" \
    bash -c 'test "$1" = 8 && grep -q "ws/sub/f2.txt" "$2" && ! grep -q ran "$3"' _ "$code" "$work/ws-sh.err" "$work/ws-sh.out"
  out=$(tramp diff "$@" --name-only)
  check "diff --name-only lists the pod's changes ($(echo "$out" | tr '\n' ' '))" \
    test "$(sort <<<"$out" | tr '\n' ' ')" = "ws/agent-new.txt ws/agent.bin ws/big.bin ws/sub/f2.txt ws/sub/f3.txt "
  check "diff shows the edit" ws_e2e_diff_has "+agent line" "$@"

  log "workspace: pull, with a local edit to the same file"
  echo "local edit" >>ws/sub/f2.txt
  code=0
  tramp pull "$@" >/dev/null 2>"$work/ws-conflict.err" || code=$?
  check "pull reports the conflicting file (exit 8, got $code)" bash -c 'test "$1" = 8 && grep -q "ws/sub/f2.txt" "$2"' _ "$code" "$work/ws-conflict.err"
  check "and overwrites nothing (the local edit stays, nothing else applied)" \
    bash -c 'tail -n 1 ws/sub/f2.txt | grep -qx "local edit" && ! grep -q "agent line" ws/sub/f2.txt && test ! -e ws/agent-new.txt && test -e ws/sub/f3.txt'
  git checkout -q -- ws/sub/f2.txt
  tramp pull "$@" >/dev/null 2>"$work/ws-pull.err" || fail "pull: $(tail -n 3 "$work/ws-pull.err")"
  check "pull applied the text edit" grep -qx "agent line" ws/sub/f2.txt
  check "pull applied the binary change and the new binary file" \
    test "$(sha256sum ws/big.bin ws/agent.bin | cut -d' ' -f1)" = "$(tramp shell "$@" -- sh -c 'cd /workspace/src && sha256sum ws/big.bin ws/agent.bin | cut -d" " -f1')"
  check "pull applied the deletion and the new file" bash -c 'test ! -e ws/sub/f3.txt && test "$(cat ws/agent-new.txt)" = new'
  check "and kept the local edit to another file" grep -qx "local line" ws/sub/f4.txt
  check "after the pull the next push is not refused" tramp push-tarball "$@" --worktree --quiet
  check "and the trees are equal file by file" ws_e2e_same "$@"

  log "workspace: a commit made in the pod"
  git add -A && git -c user.email=e2e@trampoline -c user.name=e2e commit -qm "before the agent's commit"
  tramp push-tarball "$@" "${ident[@]}" --quiet >/dev/null || fail "push-tarball of the new commit"
  tramp shell "$@" -- sh -c 'cd /workspace/src && echo "committed in the pod" >>ws/sub/f5.txt && git commit -qm "agent commit" ws/sub/f5.txt' ||
    fail "a commit in the pod"
  code=0
  tramp push-tarball "$@" --worktree --quiet >/dev/null 2>"$work/ws-commit-refused.err" || code=$?
  check "a push over a pod commit is refused (exit 8, got $code)" bash -c 'test "$1" = 8 && grep -q "commit" "$2"' _ "$code" "$work/ws-commit-refused.err"
  tramp pull "$@" >/dev/null 2>"$work/ws-pull-commit.err" || fail "pull of a pod commit: $(tail -n 3 "$work/ws-pull-commit.err")"
  check "the pod's commit came back as a commit (fast-forward), with the given author" \
    test "$(git log -1 --format='%s|%an <%ae>')" = 'agent commit|Pod Agent <agent@e2e.invalid>'
  check "and the work tree is clean against it" test -z "$(git status --porcelain)"
  check "and the next push is not refused" tramp push-tarball "$@" --quiet

  log "workspace: a pod commit when the local history moved on"
  tramp shell "$@" -- sh -c 'cd /workspace/src && echo "second pod commit" >>ws/sub/f6.txt && git commit -qm "agent commit 2" ws/sub/f6.txt' ||
    fail "a second commit in the pod"
  echo "local commit" >>ws/sub/f8.txt && git -c user.email=e2e@trampoline -c user.name=e2e commit -qam "local commit"
  tramp pull "$@" >/dev/null 2>"$work/ws-pull-branch.err" || fail "pull onto a moved HEAD: $(tail -n 3 "$work/ws-pull-branch.err")"
  check "the pod's commit is on branch trampoline/$name, HEAD untouched" \
    bash -c 'test "$(git log -1 --format=%s "trampoline/$1")" = "agent commit 2" && test "$(git log -1 --format=%s)" = "local commit"' _ "$name"
  check "and pull said how to merge it" grep -q "git merge trampoline/$name" "$work/ws-pull-branch.err"

  # Back to the project as the journey found it, and the pod with it (later journeys push).
  git reset -q --hard "$start" && git clean -qfd ws && rm -rf ws
  git branch -q -D "trampoline/$name" 2>/dev/null || true
  tramp push-tarball "$@" --worktree --force --quiet >/dev/null || fail "workspace: the closing push"
}
