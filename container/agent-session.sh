#!/usr/bin/env bash
# Claude Code for `trampoline claude`, run by exec in the user container:
#
#   agent-session.sh [--key-sha256 HEX] [--term TERM] [--new] [--] [claude args...]
#
# - The key: the instance's agent Secret is mounted (optional volume) at
#   /etc/trampoline/agent; its ANTHROPIC_API_KEY file becomes claude's ANTHROPIC_API_KEY
#   environment variable, never an argument. --key-sha256 is a prefix of the sha256 of the
#   key the CLI knows the Secret holds: a Secret created or changed moments ago reaches a
#   running pod only at the kubelet's next sync, so we wait for it (bounded) and say so.
# - The place: the pushed tree (/workspace/src), else $HOME with a note.
# - The conversation: Claude Code keeps transcripts in ~/.claude/projects/<cwd with every
#   non-alphanumeric character as '-'>/*.jsonl, taking the cwd with symlinks resolved. Our
#   cwd resolves to /workspace/.trees/<tree>, new with every push, so the tree's project
#   directory is made a link to the one named after /workspace/src: conversations outlive
#   pushes. When that holds a transcript, claude gets --continue, unless --new, the
#   arguments already pick a session, or another agent session runs in this container
#   (two sessions writing one conversation would interleave it): then a new one starts.
# Exit codes: claude's own; 2 usage; 69 the key did not arrive in time; 78 this pod has
# no key volume (made by an older trampoline); 127 claude is not installed.
set -euo pipefail
shopt -s globasciiranges nullglob

SECRET_DIR=${TRAMPOLINE_AGENT_SECRET_DIR:-/etc/trampoline/agent}
KEY_FILE=$SECRET_DIR/ANTHROPIC_API_KEY
WORKSPACE=${TRAMPOLINE_WORKSPACE_SRC:-/workspace/src}
WAIT=${TRAMPOLINE_AGENT_KEY_WAIT:-180}
PROJECTS=${CLAUDE_CONFIG_DIR:-$HOME/.claude}/projects

say() { echo "trampoline claude: $*" >&2; }
usage() { say "usage: agent-session.sh [--key-sha256 HEX] [--term TERM] [--new] [--] [claude args...]"; exit 2; }

expect='' fresh=0
while [ $# -gt 0 ]; do
  case $1 in
    --key-sha256) [ $# -ge 2 ] || usage; expect=$2; shift 2 ;;
    --term) [ $# -ge 2 ] || usage; [ -n "$2" ] && export TERM="$2"; shift 2 ;;
    --new) fresh=1; shift ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[[ -z $expect || $expect =~ ^[0-9a-f]{8,64}$ ]] || usage
[[ $WAIT =~ ^[0-9]+$ ]] || WAIT=180

# --- the key ----------------------------------------------------------------------------
if [ ! -d "$SECRET_DIR" ]; then
  say "$SECRET_DIR is missing: this pod was made by an older trampoline."
  say "Run trampoline setup: it replaces the pod (the store, workspace and home stay)."
  exit 78
fi
key_ready() {
  local sum
  [ -s "$KEY_FILE" ] || return 1
  [ -z "$expect" ] && return 0
  sum=$(sha256sum < "$KEY_FILE") || return 1
  [ "${sum:0:${#expect}}" = "$expect" ]
}
if ! key_ready; then
  say "waiting for the API key to reach the pod (a new or changed Secret takes the kubelet up to a minute or two)"
  deadline=$((SECONDS + WAIT))
  until key_ready; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "the API key did not reach $KEY_FILE within ${WAIT}s."
      say "Check the Secret trampoline-<instance>-agent, or run trampoline down && trampoline setup to mount it afresh."
      exit 69
    fi
    sleep 1
  done
fi
key=''
IFS= read -r -d '' key < "$KEY_FILE" || true
export ANTHROPIC_API_KEY="${key%$'\n'}"
unset key

# --- the place and the conversation -------------------------------------------------------
# Claude Code's name for a project directory (paths past 200 characters get a hash
# suffix; ours are far shorter).
project_key() { printf '%s' "${1//[^a-zA-Z0-9]/-}"; }

# Make the current tree's project directory a link to the workspace's stable one.
link_tree_to_workspace() {
  local stable_name here entry old trees_prefix tree
  stable_name=$(project_key "$WORKSPACE")
  here=$PROJECTS/$(project_key "$(pwd -P)")
  [ "$here" != "$PROJECTS/$stable_name" ] || return 0
  mkdir -p "$PROJECTS/$stable_name"
  if [ -d "$here" ] && [ ! -L "$here" ]; then
    # Conversations started in this tree by hand: move them over (uuid names, no clashes).
    for entry in "$here"/* "$here"/.[!.]*; do
      if [ ! -e "$PROJECTS/$stable_name/${entry##*/}" ]; then mv "$entry" "$PROJECTS/$stable_name/"; fi
    done
    if ! rmdir "$here" 2>/dev/null; then
      say "note: $here stays a directory of its own (it has files that $stable_name has too)"
      return 0
    fi
  fi
  ln -sfn -- "$stable_name" "$here"
  # Links of trees that later pushes have removed.
  trees_prefix=$(project_key "$(dirname "$(pwd -P)")/")
  for old in "$PROJECTS/$trees_prefix"*; do
    tree=${old#"$PROJECTS/$trees_prefix"}
    if [ -L "$old" ] && [ "$old" != "$here" ] && [ "$(readlink "$old")" = "$stable_name" ] && [ ! -d "$(dirname "$(pwd -P)")/$tree" ]; then
      rm -f "$old"
    fi
  done
}

if cd -- "$WORKSPACE" 2>/dev/null; then
  link_tree_to_workspace
  conversations=$PROJECTS/$(project_key "$WORKSPACE")
else
  say "nothing pushed yet ($WORKSPACE is missing): starting in $HOME. Push the project with: trampoline push-tarball"
  cd
  conversations=$PROJECTS/$(project_key "$(pwd -P)")
fi

picks_session() {
  local arg
  for arg in "$@"; do
    case $arg in -c|--continue|-r|--resume|--resume=*|--session-id|--session-id=*|--from-pr|--from-pr=*) return 0 ;; esac
  done
  return 1
}
# Agent sessions already running here, as the idle monitor counts them.
running_agents() {
  local check
  check=$("$(dirname "$0")/shutdown-monitor.sh" --check 2>/dev/null) || { echo 0; return; }
  [[ $check =~ \"agents\":([0-9]+) ]] && echo "${BASH_REMATCH[1]}" || echo 0
}
continue=()
transcripts=("$conversations"/*.jsonl)
if [ "$fresh" = 0 ] && [ ${#transcripts[@]} -gt 0 ] && ! picks_session "$@"; then
  if [ "$(running_agents)" -gt 0 ]; then
    say "another agent session is running in this pod: starting a new conversation (trampoline --name <other> claude gives a separate pod)"
  else
    continue=(--continue)
  fi
fi

# --- claude -------------------------------------------------------------------------------
# The image's claude first; one installed into the user's Nix profile also does.
export PATH=$PATH:$HOME/.nix-profile/bin:/nix/var/nix/profiles/default/bin
if ! claude=$(command -v claude); then
  say "claude is not installed in this image: use an image with Claude Code (container/image/production.nix"
  say "has it), or install it into the pod's Nix profile (nixpkgs' claude-code, which is unfree)."
  exit 127
fi
# The image pins the version, and UID 1000 cannot write there anyway.
export DISABLE_AUTOUPDATER=${DISABLE_AUTOUPDATER:-1}
exec "$claude" ${continue[@]+"${continue[@]}"} "$@"
