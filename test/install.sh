#!/usr/bin/env bash
# The npm package as a user gets it: `npm pack` a clean copy of this work tree (tracked and
# new files, no node_modules or dist), `npm install -g` the tarball into a temporary prefix,
# and run the installed trampoline and trampoline-sh from an unrelated git repository on the
# machine's own Node (the first `node` on PATH outside node_modules/.bin; too old for the
# CLI here, so the bin must restart itself on the pinned Node from the package).
#
#   test/install.sh                                   the work tree as it is
#   TRAMPOLINE_INSTALL_FROM=head test/install.sh      the last commit only
#   TRAMPOLINE_INSTALL_KEEP=1 test/install.sh         keep the temporary directory (logs, prefix)
#
# Needs the npm registry for the install (the npm cache makes reruns quick).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
passes=0
failures=0
pass() { passes=$((passes + 1)); printf 'PASS %s\n' "$*"; }
fail() { failures=$((failures + 1)); printf 'FAIL %s\n' "$*"; }
skip() { printf 'SKIP %s\n' "$*"; }
# check "description" command...: runs the command, records a pass or a failure.
check() {
  local description=$1
  shift
  if "$@"; then pass "$description"; else fail "$description"; fi
}
log() { printf '\n==> %s\n' "$*" >&2; }
finish() {
  printf '%s passed, %s failed\n' "$passes" "$failures"
  ((failures == 0))
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/trampoline-install.XXXXXX")
background=()
cleanup() {
  local pid
  for pid in "${background[@]}"; do kill -KILL -- "-$pid" "$pid" 2>/dev/null || true; done
  if [[ -n ${TRAMPOLINE_INSTALL_KEEP:-} ]]; then echo "kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# The user's PATH: without node_modules/.bin entries (npm run and npx put the pinned Node
# there). Everything below runs in a clean environment: no npm_* variables from npm run, no
# TRAMPOLINE_* from a Nix shell or an outer trampoline.
user_path=$(printf '%s' "$PATH" | tr ':' '\n' | grep -v 'node_modules/\.bin' | paste -sd: -)
unset_vars=()
while IFS= read -r name; do unset_vars+=(-u "$name"); done < <(compgen -e | grep -E '^(npm_|NPM_CONFIG_|npm_config_|TRAMPOLINE_|NODE_OPTIONS$|KUBECONFIG$)' || true)
clean() { env "${unset_vars[@]}" PATH="$user_path" XDG_STATE_HOME="$tmp/state" "$@"; }

system_node=$(PATH=$user_path command -v node || true)
if [[ -z $system_node ]]; then
  fail "a node on PATH (outside node_modules/.bin) to run npm and the installed bin"
  finish
  exit 1
fi
system_version=$("$system_node" --version)
old_node=""
"$system_node" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a < 22 || (a === 22 && b < 19) ? 0 : 1)' && old_node=1
log "machine Node: $system_node $system_version${old_node:+ (older than 22.19: the bin must restart on the pinned Node)}"

# --- pack ------------------------------------------------------------------------------
log "copying the ${TRAMPOLINE_INSTALL_FROM:-work tree} into $tmp/src"
src=$tmp/src
mkdir -p "$src"
if [[ ${TRAMPOLINE_INSTALL_FROM:-} == head ]]; then
  git -C "$root" archive HEAD | tar -x -C "$src"
else
  # Tracked and new (not ignored) files as they are now; deleted ones stay out.
  git -C "$root" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' file; do
      [[ -e $root/$file || -L $root/$file ]] && printf '%s\0' "$file"
    done |
    tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -
fi

# `npm pack` builds dist/ (prepack); the compiler comes from the checkout's node_modules
# when it has one, else from a script-less install of the lockfile.
if [[ -x $root/node_modules/.bin/tsc ]]; then
  ln -s "$root/node_modules" "$src/node_modules"
else
  log "installing the build's dev dependencies"
  (cd "$src" && clean npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$tmp/ci.log" 2>&1) ||
    { tail -20 "$tmp/ci.log"; fail "npm ci in the copy"; finish; exit 1; }
fi

log "npm pack"
mkdir -p "$tmp/pack"
if (cd "$src" && clean npm pack --pack-destination "$tmp/pack" >"$tmp/pack.log" 2>&1); then
  pass "npm pack builds and packs"
else
  tail -30 "$tmp/pack.log"
  fail "npm pack builds and packs"
  finish
  exit 1
fi
version=$(cd "$src" && "$system_node" -p 'require("./package.json").version')
name=$(cd "$src" && "$system_node" -p 'require("./package.json").name')
tarball=$tmp/pack/$name-$version.tgz
check "the tarball is $name-$version.tgz" test -f "$tarball"
tar -tzf "$tarball" | sed 's|^package/||' | sort >"$tmp/contents"

has_all() {
  local file missing=0
  for file in "$@"; do
    grep -qxF "$file" "$tmp/contents" || { echo "  missing from the tarball: $file"; missing=1; }
  done
  return "$missing"
}
check "the tarball has the bins, package.json and the compiled CLI" \
  has_all package.json bin/trampoline.js bin/trampoline-sh dist/cli.js dist/manifests/template.js
# Every top-level file of container/ is read at run time (pod template, kustomization, the
# scripts ConfigMap's files); the subdirectories (image build, tests) are not.
container_files() {
  (cd "$src" && find container -mindepth 1 -maxdepth 1 -type f | sort) >"$tmp/container.expected"
  grep '^container/' "$tmp/contents" >"$tmp/container.packed" || true
  diff -u "$tmp/container.expected" "$tmp/container.packed"
}
check "the tarball has exactly container/'s top-level files" container_files
no_tests() {
  ! grep -nE '(^|/)(tests?|e2e|bench|local-cluster)/|\.test\.|(^|/)vitest|^scripts/|\.map$' "$tmp/contents"
}
check "the tarball holds no tests, sources or source maps" no_tests

# --- install -------------------------------------------------------------------------------
log "npm install -g $name into $tmp/prefix"
prefix=$tmp/prefix
if (cd "$tmp" && clean npm install -g --prefix "$prefix" --no-audit --no-fund "$tarball" >"$tmp/install.log" 2>&1); then
  pass "npm install -g of the tarball"
else
  tail -30 "$tmp/install.log"
  fail "npm install -g of the tarball"
  finish
  exit 1
fi
log "the install's npm warnings (EBADENGINE is dependencies' engines on an older Node):"
grep -E '^npm warn' "$tmp/install.log" | grep -v '^npm warn EBADENGINE  ' >&2 || true

check "the prefix has bin/trampoline and bin/trampoline-sh" test -x "$prefix/bin/trampoline" -a -x "$prefix/bin/trampoline-sh"
package_dir=$prefix/lib/node_modules/$name
pinned=$package_dir/node_modules/node/bin/node
pinned_runs() { [[ $("$pinned" -p 'const [a, b] = process.versions.node.split(".").map(Number); a > 22 || (a === 22 && b >= 19)') == true ]]; }
check "the pinned Node is installed with the package and new enough" pinned_runs

# --- run, from a user's own project ----------------------------------------------------
project=$tmp/my-project
mkdir -p "$project"
git -C "$project" init -q
printf 'hello\n' >"$project/README"
run() { (cd "$project" && clean PATH="$prefix/bin:$user_path" timeout 60 "$@"); }
no_npm_noise() { ! grep -qi 'npm warn\|npm notice\|EBADENGINE' "$1"; }

log "trampoline --version / --help on $system_version, from $project"
code=0
run trampoline --version >"$tmp/version.out" 2>"$tmp/version.err" || code=$?
check "trampoline --version exits 0 (got $code)" test "$code" = 0
check "trampoline --version prints $version" grep -qxF "$version" "$tmp/version.out"
check "trampoline --version prints no npm noise" no_npm_noise <(cat "$tmp/version.out" "$tmp/version.err")
[[ $code == 0 ]] || sed 's/^/  /' "$tmp/version.err"

code=0
run trampoline --help >"$tmp/help.out" 2>"$tmp/help.err" || code=$?
check "trampoline --help exits 0 (got $code)" test "$code" = 0
check "trampoline --help lists the commands" grep -q 'Run Nix builds' "$tmp/help.out"
check "trampoline --help lists setup" grep -qE '^ *trampoline setup' "$tmp/help.out"
check "trampoline --help prints no npm noise" no_npm_noise <(cat "$tmp/help.out" "$tmp/help.err")

# A command that needs a cluster, with KUBECONFIG at a missing file: trampoline's own error
# about the kubeconfig (no stack trace) and exit code 3 show the real CLI ran.
kube_error() { grep -qE '^trampoline: .*kubeconfig' "$1" && ! grep -qE '^ +at .*:[0-9]+:[0-9]+' "$1"; }
code=0
run env KUBECONFIG="$tmp/missing-kubeconfig" trampoline status >"$tmp/status.out" 2>"$tmp/status.err" || code=$?
check "trampoline status without a kubeconfig exits 3 (got $code)" test "$code" = 3
check "trampoline status says the kubeconfig is missing" kube_error "$tmp/status.err"
check "trampoline status prints no npm noise" no_npm_noise "$tmp/status.err"
{ [[ $code == 3 ]] && kube_error "$tmp/status.err"; } || sed 's/^/  /' "$tmp/status.err"

code=0
run env KUBECONFIG="$tmp/missing-kubeconfig" trampoline-sh -c 'echo hi' >"$tmp/sh.out" 2>"$tmp/sh.err" || code=$?
check "trampoline-sh -c without a kubeconfig exits 3 (got $code)" test "$code" = 3
check "trampoline-sh -c says the kubeconfig is missing" kube_error "$tmp/sh.err"
{ [[ $code == 3 ]] && kube_error "$tmp/sh.err"; } || sed 's/^/  /' "$tmp/sh.err"

# trampoline-sh goes straight to the pinned Node: it runs with no node on PATH at all.
nonode=$tmp/nonode-bin
mkdir -p "$nonode"
for tool in sh dirname basename readlink git env; do ln -s "$(PATH=$user_path command -v "$tool")" "$nonode/$tool"; done
code=0
(cd "$project" && env "${unset_vars[@]}" PATH="$nonode" XDG_STATE_HOME="$tmp/state" KUBECONFIG="$tmp/missing-kubeconfig" \
  "$prefix/bin/trampoline-sh" -c 'echo hi' >"$tmp/sh2.out" 2>"$tmp/sh2.err") || code=$?
check "trampoline-sh starts on the pinned Node with no node on PATH (exit 3, got $code)" test "$code" = 3
[[ $code == 3 ]] || sed 's/^/  /' "$tmp/sh2.err"

# --- the restart on an old Node -------------------------------------------------------
if [[ -z $old_node ]]; then
  skip "the restart on the pinned Node: the machine's Node $system_version is new enough, nothing restarts"
else
  log "the restart on the pinned Node: guard, missing pinned Node, argv, exit code, signals"
  code=0
  run env TRAMPOLINE_REEXEC_NODE=/some/node trampoline --version >/dev/null 2>"$tmp/guard.err" || code=$?
  check "a restarted process on a too-old Node stops with 70 (no loop; got $code)" test "$code" = 70
  check "... and says the pinned Node is too old" grep -q 'too old' "$tmp/guard.err"

  # The bin alone, with no `node` package anywhere above it.
  lonely=$tmp/lonely
  mkdir -p "$lonely/bin"
  cp "$package_dir/bin/trampoline.js" "$lonely/bin/"
  printf '{"type":"module"}\n' >"$lonely/package.json"
  code=0
  (cd "$project" && clean "$system_node" "$lonely/bin/trampoline.js" --version >/dev/null 2>"$tmp/lonely.err") || code=$?
  check "without the pinned Node: exit 70 (got $code)" test "$code" = 70
  check "without the pinned Node: says what to do" grep -q 'npm install -g nix-trampoline' "$tmp/lonely.err"
  [[ $code == 70 ]] || sed 's/^/  /' "$tmp/lonely.err"

  # A stand-in for the pinned Node records how it was started and answers as told.
  fake=$tmp/fake
  mkdir -p "$fake/bin" "$fake/node_modules/node/bin"
  cp "$package_dir/bin/trampoline.js" "$fake/bin/"
  printf '{"type":"module"}\n' >"$fake/package.json"
  printf '{"name":"node","version":"24.0.0","bin":{"node":"bin/node"}}\n' >"$fake/node_modules/node/package.json"
  cat >"$fake/node_modules/node/bin/node" <<'EOF'
#!/bin/sh
out=$FAKE_NODE_OUT
printf '%s\n' "$@" >"$out.argv"
printf '%s\n' "${TRAMPOLINE_REEXEC_NODE:-}" >"$out.guard"
case $FAKE_NODE_MODE in
  exit) exit 42 ;;
  wait)
    trap 'echo INT >>"$out.signals"' INT
    trap 'echo TERM >>"$out.signals"; trap - TERM; kill -TERM $$' TERM
    : >"$out.ready"
    while :; do sleep 0.1; done ;;
esac
EOF
  chmod +x "$fake/node_modules/node/bin/node"
  fake_run() { clean FAKE_NODE_OUT="$tmp/fake-out" "$@"; }
  # In the background (`fake_start ... &`): exec, so that $! is the launcher's own pid.
  fake_start() { exec env "${unset_vars[@]}" PATH="$user_path" FAKE_NODE_OUT="$tmp/fake-out" FAKE_NODE_MODE=wait "$@"; }

  code=0
  fake_run FAKE_NODE_MODE=exit "$system_node" "$fake/bin/trampoline.js" 'a b' '' --x || code=$?
  check "restart: the exit code passes through (42, got $code)" test "$code" = 42
  printf '%s\n' "$fake/bin/trampoline.js" 'a b' '' --x >"$tmp/argv.expected"
  check "restart: argv passes through unchanged" diff -u "$tmp/argv.expected" "$tmp/fake-out.argv"
  check "restart: the guard names the pinned Node" grep -qxF "$fake/node_modules/node/bin/node" "$tmp/fake-out.guard"

  wait_ready() {
    local i
    for ((i = 0; i < 100; i++)); do [[ -e $tmp/fake-out.ready ]] && return 0; sleep 0.1; done
    return 1
  }
  signals() { cat "$tmp/fake-out.signals" 2>/dev/null | paste -sd, -; }
  wait_signals() {
    local i
    for ((i = 0; i < 100; i++)); do [[ $(signals) == "$1" ]] && return 0; sleep 0.1; done
    return 1
  }

  # SIGTERM to the launcher's pid alone reaches the child (after the grace time) and the
  # launcher dies of it like the child did.
  rm -f "$tmp"/fake-out.*
  fake_start "$system_node" "$fake/bin/trampoline.js" 2>>"$tmp/fake.err" &
  pid=$!
  background+=("$pid")
  if wait_ready; then
    kill -TERM "$pid"
    code=0
    { wait "$pid"; } 2>/dev/null || code=$?
    check "restart: SIGTERM to the launcher reaches the child once ($(signals))" test "$(signals)" = TERM
    check "restart: the launcher exits as killed by SIGTERM (143, got $code)" test "$code" = 143
  else
    fail "restart: the stand-in Node started"
  fi

  # Ctrl-C at a terminal signals the whole process group: the child gets it once, not again
  # from the launcher.
  if command -v setsid >/dev/null; then
    rm -f "$tmp"/fake-out.*
    fake_start setsid "$system_node" "$fake/bin/trampoline.js" 2>>"$tmp/fake.err" &
    pid=$!
    background+=("$pid")
    if wait_ready; then
      kill -INT -- "-$pid"
      wait_signals INT
      # Then a group SIGTERM ends both. A second INT, from the launcher, would show up in
      # the list before the child dies (the launcher forwards only after 5.5 s).
      kill -TERM -- "-$pid"
      code=0
      { wait "$pid"; } 2>/dev/null || code=$?
      check "restart: a group SIGINT reaches the child once ($(signals))" test "$(signals)" = INT,TERM
      check "restart: the launcher ends with the child (143, got $code)" test "$code" = 143
    else
      fail "restart: the stand-in Node started in its own process group"
    fi
  else
    skip "group SIGINT: no setsid"
  fi
fi

finish
