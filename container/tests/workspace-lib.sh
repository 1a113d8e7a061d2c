# shellcheck shell=bash
# The client side of a push, as the CLI does it (scripts/pod/push.ts, scripts/git.ts), for the
# container tests: the work tree as `git add -A` would stage it (a temporary index), a pack
# of its objects the pod lacks, piped into push-receive.sh receive as UID 1000.
# Sourced by t-pod.sh and t-workspace.sh.

# ws_receive ARGS...: push-receive.sh as the CLI execs it (UID 1000, only the toolset);
# WS (default /workspace) is the workspace, WS_RUN the run dir, WS_EXTRA one more VAR=value.
ws_receive() {
  "${AS_USER[@]}" env -i "${USER_ENV[@]}" PATH="$TOOLSET" TRAMPOLINE_WORKSPACE="${WS:-/workspace}" \
    TRAMPOLINE_RUN_DIR="${WS_RUN:-/run/trampoline}" ${WS_EXTRA:+"$WS_EXTRA"} /opt/trampoline/push-receive.sh "$@"
}

# ws_in_pod CMD...: a command as UID 1000 in the workspace's work tree (an agent's edit).
ws_in_pod() {
  (cd "${WS:-/workspace}/src" && "${AS_USER[@]}" env -i "${USER_ENV[@]}" PATH="$TOOLSET" "$@")
}

# ws_tree REPO: the tree `git add -A` would stage, without touching REPO's index.
ws_tree() {
  local index
  index=$(mktemp)
  if [ -e "$1/.git/index" ]; then cp "$1/.git/index" "$index"; else rm -f "$index"; fi
  GIT_INDEX_FILE=$index git -C "$1" add -A
  GIT_INDEX_FILE=$index git -C "$1" write-tree
  rm -f "$index"
}

# ws_pushed: the pod's pushed tree, or - (push-receive.sh's `pushed` file).
ws_pushed() {
  local tree=-
  [ ! -e "${WS:-/workspace}/.trees/pushed" ] || read -r tree _ < "${WS:-/workspace}/.trees/pushed"
  echo "$tree"
}

# ws_pack REPO TREE BASE FROM: the pack push.ts sends (objects of TREE and BASE's tree the
# pod lacks given FROM, plus the commit BASE itself).
ws_pack() {
  local repo=$1 tree=$2 base=$3 from=$4 args
  args=("$tree")
  [ "$base" = - ] || args+=("$base^{tree}")
  [ "$from" = - ] || args+=(--not "$from")
  { git -C "$repo" rev-list --objects "${args[@]}"; [ "$base" = - ] || echo "$base"; } |
    git -C "$repo" pack-objects --stdout -q --window=0 --delta-base-offset
}

# ws_push REPO [RECEIVE OPTIONS...]: push REPO's work tree; WS_PACK_BYTES holds the pack's size.
# shellcheck disable=SC2034 # read by the suites
WS_PACK_BYTES=0
ws_push() {
  local repo=$1 tree base from
  shift
  tree=$(ws_tree "$repo")
  base=$(git -C "$repo" rev-parse -q --verify HEAD || echo -)
  from=$(ws_pushed)
  ws_pack "$repo" "$tree" "$base" "$from" > "$T/ws.pack"
  # shellcheck disable=SC2034
  WS_PACK_BYTES=$(stat -c %s "$T/ws.pack")
  ws_receive receive --tree "$tree" --base "$base" --from "$from" --branch main --name Test --email test@example.invalid "$@" < "$T/ws.pack"
}

# ws_listing DIR [EXCLUDE...]: every path under DIR (its .git and the top-level EXCLUDEs
# apart) with type, mode and link target.
ws_listing() {
  local dir=$1 prune=(-path ./.git) name
  shift
  for name in "$@"; do prune+=(-o -path "./$name"); done
  (cd "$dir" && find . \( "${prune[@]}" \) -prune -o -printf '%y %m %P -> %l\n' | sort)
}

# ws_same REPO TREE DIR [EXCLUDE...]: DIR holds exactly the git tree TREE, file by file:
# types, modes, symlink targets and contents, and git's empty-directory semantics (none).
# EXCLUDEs: top-level names git ignores there (build results), left out.
ws_same() {
  local repo=$1 tree=$2 dir=$3 expect=$T/ws-expect name excludes=()
  shift 3
  rm -rf "$expect" && mkdir -p "$expect"
  # git records only "executable or not": checked out under umask 022, that is 755 or 644.
  git -C "$repo" archive "$tree" | (umask 022 && tar -x --no-same-permissions -C "$expect")
  for name in "$@"; do excludes+=(-x "$name"); done
  diff <(ws_listing "$expect") <(ws_listing "$dir" "$@")
  diff -r --no-dereference -x .git ${excludes[@]+"${excludes[@]}"} "$expect" "$dir"
}
