#!/usr/bin/env bash
# Claude Code for `trampoline claude`, run by exec in the user container:
#
#   agent-session.sh [--key-sha256 HEX] [--term TERM] [--new] [--detachable] [--] [claude args...]
#   agent-session.sh --attach [ID] [--term TERM]      reattach a detachable session (newest without ID)
#   agent-session.sh --list                           the sessions as one JSON array on stdout
#   agent-session.sh --provide-tmux INSTALLABLE [--replace]
#       make tmux available: print its path, realising INSTALLABLE (nixpkgs#tmux, a store
#       path...) through the pod's nix-daemon into $GC_ROOTS/agent-tmux when the pod has none
#       (--replace: realise it even so). Progress on stderr.
#
# - The key: the instance's agent Secret is mounted (optional volume) at
#   /etc/trampoline/agent; its ANTHROPIC_API_KEY file becomes claude's ANTHROPIC_API_KEY
#   environment variable, never an argument. --key-sha256 is a prefix of the sha256 of the
#   key the CLI knows the Secret holds: a Secret created or changed moments ago reaches a
#   running pod only at the kubelet's next sync, so we wait for it (bounded) and say so.
# - The place: the pushed tree (/workspace/src), else $HOME with a note.
# - The conversation: Claude Code keeps transcripts in ~/.claude/projects/<cwd with every
#   non-alphanumeric character as '-'>/*.jsonl, taking the cwd with symlinks resolved. When
#   /workspace/src is a link to /workspace/.trees/<tree> (new with every push), the tree's
#   project directory is made a link to the one named after /workspace/src: conversations
#   outlive pushes (a no-op when /workspace/src is a real directory). When that holds a
#   transcript, claude gets --continue, unless --new, the arguments already pick a session,
#   or another agent session runs in this container (two sessions writing one conversation
#   would interleave it): then a new one starts.
# - Detachable sessions (--detachable, what `trampoline claude` asks for on a terminal):
#   claude runs in a tmux server of its own (one per session, socket and notes in
#   $SESSIONS, the pod's memory-backed run directory), and this exec is only a client: a
#   dropped connection ends the client, never claude. The server is re-parented to PID 1,
#   which the idle monitor counts as activity (and claude below it as an agent). It ends
#   with claude (exit-empty): nothing is left behind to keep the pod busy. tmux is the one
#   in $GC_ROOTS/agent-tmux (see --provide-tmux), else the image's on PATH. The key reaches
#   the session through the server's environment, never a command line.
# Exit codes: claude's own; 2 usage; 66 no such session; 69 the key did not arrive in time;
# 72 no tmux in the pod; 78 this pod has no key volume (made by an older trampoline);
# 127 claude is not installed.
set -euo pipefail
shopt -s globasciiranges nullglob

SECRET_DIR=${TRAMPOLINE_AGENT_SECRET_DIR:-/etc/trampoline/agent}
KEY_FILE=$SECRET_DIR/ANTHROPIC_API_KEY
WORKSPACE=${TRAMPOLINE_WORKSPACE_SRC:-/workspace/src}
WAIT=${TRAMPOLINE_AGENT_KEY_WAIT:-180}
PROJECTS=${CLAUDE_CONFIG_DIR:-$HOME/.claude}/projects
SESSIONS=${TRAMPOLINE_SESSIONS_DIR:-${TRAMPOLINE_RUN_DIR:-/run/trampoline}/sessions}
GC_ROOTS=${TRAMPOLINE_GC_ROOTS:-/nix/var/nix/gcroots/trampoline}
TMUX_LINK=$GC_ROOTS/agent-tmux
# Nix and what the user installed into the pod's profiles (the image's PATH first).
export PATH=$PATH:$HOME/.nix-profile/bin:/nix/var/nix/profiles/default/bin

say() { echo "trampoline claude: $*" >&2; }
usage() {
  say "usage: agent-session.sh [--key-sha256 HEX] [--term TERM] [--new] [--detachable] [--] [claude args...]"
  say "       agent-session.sh --attach [ID] [--term TERM] | --list | --provide-tmux INSTALLABLE [--replace]"
  exit 2
}

# --- detachable sessions ---------------------------------------------------------------
# $SESSIONS/<id>.sock is the session's tmux server, <id>.meta its notes (started=, tmux=,
# command=), <id>.exit claude's exit status once it ended (for the client that sees it end).

# find_tmux: the tmux this pod provides, as a store path when it is the provisioned one
# (a later --replace re-points the link, never the binary a running server came from).
find_tmux() {
  local store
  if [ -x "$TMUX_LINK/bin/tmux" ] && store=$(readlink -f -- "$TMUX_LINK"); then
    echo "$store/bin/tmux"
    return 0
  fi
  command -v tmux
}

json_string() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "${s//[$'\001'-$'\037']/ }"
}

valid_id() { [[ $1 =~ ^[0-9a-f]{8}$ ]]; }

# read_meta ID: sets META_STARTED, META_TMUX, META_COMMAND; false without notes.
read_meta() {
  local key value
  META_STARTED='' META_TMUX='' META_COMMAND=''
  [ -f "$SESSIONS/$1.meta" ] || return 1
  while IFS='=' read -r key value; do
    case $key in
      started) META_STARTED=$value ;;
      tmux) META_TMUX=$value ;;
      command) META_COMMAND=$value ;;
    esac
  done < "$SESSIONS/$1.meta" || true
  [ -n "$META_TMUX" ]
}

# session_tmux ID ARGS...: tmux of the session's own server (the binary that started it).
session_tmux() {
  local id=$1
  shift
  "$META_TMUX" -S "$SESSIONS/$id.sock" "$@"
}

# alive ID: the session's server answers and has it (reads its notes).
alive() {
  read_meta "$1" && [ -S "$SESSIONS/$1.sock" ] && session_tmux "$1" has-session -t "=$1" 2>/dev/null
}

# forget ID: the files of a session whose server is gone.
forget() { rm -f -- "$SESSIONS/$1.sock" "$SESSIONS/$1.meta" "$SESSIONS/$1.conf"; }

# live_ids: the ids of running sessions, oldest first; forgets dead ones on the way.
live_ids() {
  local meta id
  local -a rows=()
  for meta in "$SESSIONS"/*.meta; do
    id=${meta##*/}; id=${id%.meta}
    valid_id "$id" || continue
    if alive "$id"; then
      rows+=("$(printf '%012d %s' "${META_STARTED:-0}" "$id")")
    elif [ ! -S "$SESSIONS/$id.sock" ] || ! read_meta "$id"; then
      # Never started (a failed tmux), or its server died without cleaning up.
      forget "$id"
    fi
  done
  # Sockets of sessions that ended (their notes are gone).
  for meta in "$SESSIONS"/*.sock; do
    id=${meta##*/}; id=${id%.sock}
    [ -e "$SESSIONS/$id.meta" ] || rm -f -- "$meta"
  done
  [ ${#rows[@]} -gt 0 ] || return 0
  printf '%s\n' "${rows[@]}" | sort | while read -r _ id; do echo "$id"; done
}

list_sessions() {
  local id attached first=1
  printf '['
  for id in $(live_ids); do
    read_meta "$id" || continue
    attached=$(session_tmux "$id" list-sessions -F '#{session_attached}' 2>/dev/null | head -n1) || attached=0
    [[ $attached =~ ^[0-9]+$ ]] || attached=0
    [ "$first" = 1 ] || printf ','
    first=0
    printf '{"id":"%s","started":%s,"attached":%s,"command":%s}' "$id" "${META_STARTED:-0}" "$attached" "$(json_string "$META_COMMAND")"
  done
  printf ']\n'
}

# after_client ID STATUS: the tmux client returned: claude ended (its status is ours), the
# user detached (say how to come back), or tmux itself failed.
after_client() {
  local id=$1 status=$2 code
  if [ -f "$SESSIONS/$id.exit" ]; then
    read -r code < "$SESSIONS/$id.exit" || code=1
    rm -f -- "$SESSIONS/$id.exit"
    [[ $code =~ ^[0-9]+$ ]] || code=1
    exit "$code"
  fi
  if alive "$id"; then
    say "session $id keeps running. Back to it: trampoline claude --attach $id"
    exit 0
  fi
  [ -S "$SESSIONS/$id.sock" ] || forget "$id"
  [ "$status" != 0 ] || status=1
  say "the session's terminal (tmux) ended with status $status"
  exit "$status"
}

# A client needs a terminal type tmux knows.
client_term() { if [ -z "${TERM:-}" ] || [ "$TERM" = dumb ]; then export TERM=xterm-256color; fi; }

attach_session() {
  local id=$1 status=0
  unset TMUX
  if [ -z "$id" ]; then
    id=$(live_ids | tail -n1)
    if [ -z "$id" ]; then
      say "no Claude Code session runs in this pod (trampoline sessions lists them; trampoline claude starts one)"
      exit 66
    fi
  elif ! valid_id "$id" || ! alive "$id"; then
    say "no session $id in this pod (trampoline sessions lists them)"
    exit 66
  fi
  read_meta "$id"
  client_term
  # -d: take the session over from a client left behind by a dropped connection.
  session_tmux "$id" attach-session -d -t "=$id" || status=$?
  after_client "$id" "$status"
}

# provide_tmux INSTALLABLE REPLACE
provide_tmux() {
  local installable=$1 replace=$2 found
  if [ "$replace" = 0 ] && found=$(find_tmux); then echo "$found"; return 0; fi
  say "providing tmux for detachable sessions: nix build $installable (once: kept at $TMUX_LINK)"
  # Through the daemon: its binary caches and its builders; the user container is not trusted,
  # so a store path must come signed from a cache the daemon trusts, or be built.
  if ! nix --extra-experimental-features 'nix-command flakes' build --out-link "$TMUX_LINK" -- "$installable" >&2; then
    say "could not realise $installable in the pod's store"
    exit 72
  fi
  if [ ! -x "$TMUX_LINK/bin/tmux" ]; then
    say "$installable has no bin/tmux"
    rm -f -- "$TMUX_LINK"
    exit 72
  fi
  find_tmux
}

# in_session ID CLAUDE ARGS...: the session's only window, run by its tmux server.
in_session() {
  local id=$1 status=0
  shift
  "$@" || status=$?
  printf '%s\n' "$status" > "$SESSIONS/$id.exit.tmp" && mv -f -- "$SESSIONS/$id.exit.tmp" "$SESSIONS/$id.exit"
  # The server ends with this window (exit-empty): its files go now.
  forget "$id"
  exit "$status"
}

case ${1:-} in
  --list) [ $# = 1 ] || usage; list_sessions; exit 0 ;;
  --attach)
    shift
    id=''
    while [ $# -gt 0 ]; do
      case $1 in
        --term) [ $# -ge 2 ] || usage; [ -n "$2" ] && export TERM="$2"; shift 2 ;;
        -*) usage ;;
        *) [ -z "$id" ] || usage; id=$1; shift ;;
      esac
    done
    attach_session "$id" ;;
  --provide-tmux)
    if [ $# -lt 2 ] || [ -z "$2" ]; then usage; fi
    case ${3:-} in --replace) replace=1 ;; '') replace=0 ;; *) usage ;; esac
    provide_tmux "$2" "$replace"
    exit 0 ;;
  --in-session)
    if [ $# -lt 4 ] || [ "$3" != -- ] || ! valid_id "$2"; then usage; fi
    id=$2
    shift 3
    in_session "$id" "$@" ;;
esac

expect='' fresh=0 detachable=0
while [ $# -gt 0 ]; do
  case $1 in
    --key-sha256) [ $# -ge 2 ] || usage; expect=$2; shift 2 ;;
    --term) [ $# -ge 2 ] || usage; [ -n "$2" ] && export TERM="$2"; shift 2 ;;
    --new) fresh=1; shift ;;
    --detachable) detachable=1; shift ;;
    --) shift; break ;;
    *) usage ;;
  esac
done
[[ -z $expect || $expect =~ ^[0-9a-f]{8,64}$ ]] || usage
[[ $WAIT =~ ^[0-9]+$ ]] || WAIT=180
# Before the key is read: a session without tmux would fail only after the wait.
if [ "$detachable" = 1 ] && ! TMUX_BIN=$(find_tmux); then
  say "no tmux in this pod for a detachable session: trampoline claude provides one (--tmux INSTALLABLE),"
  say "or run claude without one (trampoline claude --no-detachable)"
  exit 72
fi

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
    say "another agent session is running in this pod: starting a new conversation (trampoline claude --attach returns to a detached one; trampoline --name <other> claude gives a separate pod)"
  else
    continue=(--continue)
  fi
fi

# --- claude -------------------------------------------------------------------------------
# Where the user installed it in the pod (Claude Code's own installer puts it in
# ~/.local/bin; or the Nix profile) first: they chose it; else the image's.
if ! claude=$(PATH=$HOME/.local/bin:$HOME/.nix-profile/bin:$PATH command -v claude); then
  say "claude is not installed in this image: use an image with Claude Code (container/image/production.nix"
  say "has it), or install it into the pod's Nix profile (nixpkgs' claude-code, which is unfree)."
  exit 127
fi
# The image pins the version, and UID 1000 cannot write there anyway.
export DISABLE_AUTOUPDATER=${DISABLE_AUTOUPDATER:-1}
if [ "$detachable" = 0 ]; then
  exec "$claude" ${continue[@]+"${continue[@]}"} "$@"
fi

# A session of its own: id, notes, the tmux settings it depends on, then this exec
# becomes its first client.
unset TMUX
client_term
[ -d "$SESSIONS" ] || mkdir -m 0700 -- "$SESSIONS"
for _ in 1 2 3 4 5; do
  id=$(printf '%04x%04x' "$RANDOM" "$RANDOM")
  [ -e "$SESSIONS/$id.meta" ] || [ -e "$SESSIONS/$id.sock" ] || break
done
command_line=claude
for arg in ${continue[@]+"${continue[@]}"} "$@"; do command_line+=" $arg"; done
printf 'started=%s\ntmux=%s\ncommand=%s\n' "$EPOCHSECONDS" "$TMUX_BIN" "${command_line//$'\n'/ }" > "$SESSIONS/$id.meta"
# The user's ~/.tmux.conf applies, except where it would keep the server alive without
# claude, or claude's window open after it ended.
{
  echo 'source-file -q ~/.tmux.conf'
  echo 'set -s exit-empty on'
  echo 'set -s exit-unattached off'
  echo 'set -g destroy-unattached off'
  echo 'set -g remain-on-exit off'
  echo "set -g status-right ' trampoline claude $id '"
} > "$SESSIONS/$id.conf"
status=0
"$TMUX_BIN" -S "$SESSIONS/$id.sock" -f "$SESSIONS/$id.conf" new-session -s "$id" -n claude -c "$PWD" -- \
  "$0" --in-session "$id" -- "$claude" ${continue[@]+"${continue[@]}"} "$@" || status=$?
read_meta "$id" || META_TMUX=$TMUX_BIN
after_client "$id" "$status"
