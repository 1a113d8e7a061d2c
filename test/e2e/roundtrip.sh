# shellcheck shell=bash
# shellcheck disable=SC2154,SC2034,SC2164 # root, tramp, pod_options... come from test.sh; cd failures fail the journey under set -e
# The round trip feels like local nix (issue 11), sourced by test.sh (tramp, check, fail,
# log, json_field, pod_options, root, node_bin). On an instance of its own, so its pushes
# and builds leave the main journey's pod alone:
#
#   roundtrip_journey WORK NAMESPACE INSTANCE
#   roundtrip_cleanup NAMESPACE INSTANCE     in the EXIT trap
#
#   1. build brings results home: ./result links named as nix build names them, local GC
#      roots (also for a non-root user through a nix-daemon), --out-link, --no-link,
#      --remote-only, no local Nix (a warning, once), copy-closure --from --out-link
#   2. --eval local: a Nix file relative to the local directory, a flake with a path input
#   3. push-tarball with submodules (recorded commits, nested, --worktree, not checked
#      out) and Git LFS pointer files
#   4. the pod's Nix system in setup's result and status --json; setup --arch with no such node
#   5. builder: the pod as a remote builder of this machine's Nix (unix socket, trusted
#      nix-daemon --stdio in the daemon container)
#
# Every derivation builds offline: in the pod from /opt/busybox, here from /bin/busybox.

roundtrip_journey() {
  local work=$1/roundtrip namespace=$2 name=$3
  local args=(--name "$name" -n "$namespace")
  rt_namespace=$namespace rt_name=$name rt_caller_dir=$PWD
  mkdir -p "$work"
  rt_busybox=$work/busybox-dir
  mkdir -p "$rt_busybox" && cp /bin/busybox "$rt_busybox/busybox"

  log "round trip: setup (an instance of its own: $name)"
  local out
  out=$(tramp setup "${args[@]}" "${pod_options[@]}" --idle-timeout 0 --json 2>"$work/setup.err") ||
    { fail "round trip: setup ($(tail -n 3 "$work/setup.err" | tr '\n' ' '))"; return 0; }
  check "round trip: the pod runs" test "$(json_field phase <<<"$out")" = Running
  rt_system=$(json_field system <<<"$out" || true)
  check "setup's result names the pod's Nix system ($rt_system)" grep -Eqx '[a-z0-9_]+-[a-z]+' <<<"$rt_system"
  rt_key=$(tramp status "${args[@]}" --json | json_field 0.signingKey || true)

  roundtrip_push "$work" "${args[@]}"
  roundtrip_build "$work" "${args[@]}"
  roundtrip_nonroot "$work" "${args[@]}"
  roundtrip_eval_local "$work" "${args[@]}"
  roundtrip_arch "$work" "$namespace" "$name" "${args[@]}"
  roundtrip_builder "$work" "${args[@]}"

  # Back where the journey was: the rest of the e2e works in its own project.
  cd "$rt_caller_dir"
  tramp clean "${args[@]}" --quiet >/dev/null 2>&1 || fail "round trip: clean $name"
}

# For test.sh's EXIT trap: whatever an aborted journey left (the instances, the local
# nix-daemon and builder it started, the non-root user's directory).
roundtrip_cleanup() {
  local namespace=$1 name=$2
  if [ -n "${rt_builder_pid:-}" ]; then kill "$rt_builder_pid" 2>/dev/null || true; fi
  if [ -n "${rt_daemon_pid:-}" ]; then kill "$rt_daemon_pid" 2>/dev/null || true; fi
  if [ -n "${rt_nonroot_dir:-}" ]; then rm -rf "$rt_nonroot_dir" || true; fi
  tramp clean --name "$name" -n "$namespace" --quiet >/dev/null 2>&1 || true
  tramp clean --name "$name-arch" -n "$namespace" --quiet >/dev/null 2>&1 || true
}

rt_git() { git -c user.email=e2e@trampoline -c user.name=e2e -c protocol.file.allow=always "$@"; }

# A committed repository at DIR with the given files (name content ...).
rt_repo() {
  local dir=$1
  shift
  mkdir -p "$dir"
  git -C "$dir" init -q
  while [ $# -gt 1 ]; do
    mkdir -p "$(dirname "$dir/$1")"
    printf '%s\n' "$2" >"$dir/$1"
    shift 2
  done
  rt_git -C "$dir" add -A && rt_git -C "$dir" commit -qm initial
}

# 3. Submodules and LFS: the project of this journey, pushed.
roundtrip_push() {
  local work=$1
  shift
  log "round trip: push-tarball with submodules and Git LFS pointers"
  rt_repo "$work/upstream/inner" deep.txt "deep $$"
  rt_repo "$work/upstream/lib" lib.txt "lib recorded $$"
  rt_git -C "$work/upstream/lib" submodule add -q "$work/upstream/inner" inner && rt_git -C "$work/upstream/lib" commit -qm inner
  rt_project=$work/project
  rt_repo "$rt_project" .gitattributes '*.bin filter=lfs diff=lfs merge=lfs -text' \
    model.bin "$(printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%064d\nsize 123456' 0)"
  cp "$root"/test/e2e/{roundtrip,hello,flake}.nix "$rt_project/"
  cd "$rt_project"
  rt_git submodule add -q "$work/upstream/lib" vendor/lib
  rt_git submodule update -q --init --recursive
  rt_git add -A && rt_git commit -qm "project with a submodule"
  # The submodule moves on locally; HEAD still records the first commit.
  echo "lib moved on $$" >vendor/lib/lib.txt
  rt_git -C vendor/lib commit -qam "moved on"

  local out tree
  out=$(tramp push-tarball "$@" --head --json 2>"$work/push.err") || true
  tree=$(json_field tree <<<"$out" 2>/dev/null || true)
  check "push of a tree with submodules succeeds ($tree)" grep -Eqx '[0-9a-f]{40}' <<<"$tree"
  check "the submodule's files at the commit HEAD records" \
    test "$(tramp shell "$@" -- cat /workspace/src/vendor/lib/lib.txt)" = "lib recorded $$"
  check "nested submodules too" test "$(tramp shell "$@" -- cat /workspace/src/vendor/lib/inner/deep.txt)" = "deep $$"
  check "the push warned about the LFS pointer, naming it" grep -q 'Git LFS pointer.*model\.bin' "$work/push.err"
  check "the pointer file went as it is" tramp shell "$@" -- grep -q 'git-lfs.github.com/spec/v1' /workspace/src/model.bin

  echo "uncommitted in the submodule $$" >vendor/lib/lib.txt
  out=$(tramp push-tarball "$@" --worktree --json 2>"$work/push-wt.err") || true
  check "push --worktree includes a submodule's uncommitted work" \
    test "$(tramp shell "$@" -- cat /workspace/src/vendor/lib/lib.txt)" = "uncommitted in the submodule $$"
  rt_git -C vendor/lib checkout -q -- lib.txt

  rt_git submodule deinit -q -f vendor/lib
  local code=0 before
  before=$(tramp shell "$@" -- readlink /workspace/src || true)
  tramp push-tarball "$@" --head >/dev/null 2>"$work/push-deinit.err" || code=$?
  check "a submodule that is not checked out: the push refuses (exit $code, want 7)" test "$code" = 7
  check "and names it" grep -q 'submodule "vendor/lib" is not checked out' "$work/push-deinit.err"
  check "and the pod keeps the previous tree" test "$(tramp shell "$@" -- readlink /workspace/src)" = "$before"
  rt_git submodule update -q --init --recursive
  tramp push-tarball "$@" --head --quiet >/dev/null 2>&1 || fail "push again after checking the submodule out"
}

# The link names nix build itself gives for these installables, built here.
rt_truth_links() {
  local dir=$1
  shift
  mkdir -p "$dir"
  (cd "$dir" && nix --extra-experimental-features nix-command build -f "$root/test/e2e/roundtrip.nix" "$@" \
    --arg busyboxDir "$rt_busybox" --argstr salt "truth-$$" --option build-users-group '' --option substituters '' >/dev/null 2>&1) || return 1
  (cd "$dir" && ls -1d result* | sort | tr '\n' ' ')
}

# 1. build brings results home.
roundtrip_build() {
  local work=$1
  shift
  log "round trip: build brings the results home"
  local dir=$work/build out links first second truth
  mkdir -p "$dir" && cd "$dir"
  out=$(tramp build "$@" -f roundtrip.nix one two --json -- --argstr salt "rt-$$" 2>"$work/build.err") || true
  first=$(json_field outputs.0 <<<"$out" 2>/dev/null || true)
  second=$(json_field outputs.1 <<<"$out" 2>/dev/null || true)
  check "build printed both results ($first $second)" grep -q 'roundtrip-two' <<<"$second"
  check "./result is the first, ./result-1 the second" test "$(readlink result)" = "$first" -a "$(readlink result-1)" = "$second"
  check "the result is in the local store, with its content" test "$(cat result 2>/dev/null)" = "roundtrip-one rt-$$"
  check "--json lists the links" test "$(json_field links.1.link <<<"$out")" = "$dir/result-1"
  check "./result is a local GC root (indirect, as nix build's)" bash -c 'nix-store -q --roots "$1" 2>/dev/null | grep -qF "$2/result ->"' _ "$first" "$dir"
  check "the results stay rooted in the pod too" \
    test "$(tramp shell "$@" -- readlink /nix/var/nix/gcroots/trampoline/roundtrip.nix+one+two-1)" = "$second"

  # Exactly nix build's naming: the same installables built here by nix build itself.
  rm -f result*
  out=$(tramp build "$@" -f roundtrip.nix one.doc two --json -- --argstr salt "rt-names-$$" 2>>"$work/build.err") || true
  links=$(ls -1d result* 2>/dev/null | sort | tr '\n' ' ' || true)
  truth=$(rt_truth_links "$work/truth" one.doc two) || truth="(nix build failed here)"
  check "links named as nix build names them ($links= $truth)" test "$links" = "$truth"

  out=$(tramp build "$@" -f roundtrip.nix one --out-link mine --json -- --argstr salt "rt-o-$$" 2>>"$work/build.err") || true
  check "--out-link mine links ./mine" test "$(readlink mine)" = "$(json_field outputs.0 <<<"$out")"

  rm -f result*
  out=$(tramp build "$@" -f roundtrip.nix one --no-link --json -- --argstr salt "rt-nolink-$$" 2>>"$work/build.err") || true
  first=$(json_field outputs.0 <<<"$out" 2>/dev/null || true)
  check "--no-link copies home without a link" bash -c 'nix-store --check-validity "$1" 2>/dev/null && ! ls result* >/dev/null 2>&1' _ "$first"

  out=$(tramp build "$@" -f roundtrip.nix one --remote-only --json -- --argstr salt "rt-remote-$$" 2>>"$work/build.err") || true
  first=$(json_field outputs.0 <<<"$out" 2>/dev/null || true)
  check "--remote-only leaves it in the pod: not here ($first)" bash -c '[ -n "$1" ] && ! nix-store --check-validity "$1" 2>/dev/null' _ "$first"
  check "--remote-only: but in the pod" tramp shell "$@" -- nix-store --check-validity "$first"

  log "round trip: copy-closure --from --out-link"
  tramp copy-closure "$@" --from "$first" --out-link fetched --quiet 2>>"$work/build.err" || true
  check "copy-closure --from --out-link links ./fetched, a local GC root" \
    bash -c '[ "$(readlink fetched)" = "$1" ] && nix-store -q --roots "$1" 2>/dev/null | grep -qF "$2/fetched ->"' _ "$first" "$dir"

  log "round trip: no local Nix"
  local nonix=$work/no-nix-bin tool
  mkdir -p "$nonix"
  for tool in bash sh git ssh; do ln -sf "$(command -v "$tool")" "$nonix/$tool"; done
  PATH=$nonix tramp build "$@" -f roundtrip.nix one --json -- --argstr salt "rt-nonix-$$" >"$work/nonix1.out" 2>"$work/nonix1.err" || true
  PATH=$nonix tramp build "$@" -f roundtrip.nix one --json -- --argstr salt "rt-nonix-$$" >"$work/nonix2.out" 2>"$work/nonix2.err" || true
  check "without local Nix: the build still works, results left in the pod" \
    test "$(json_field copied <"$work/nonix1.out" 2>/dev/null)" = false
  check "without local Nix: a warning" grep -q 'no Nix on this machine' "$work/nonix1.err"
  check "without local Nix: the warning only once" bash -c '! grep -q "no Nix on this machine" "$1"' _ "$work/nonix2.err"
}

# 1. A non-root user whose Nix is a daemon's client: the copy goes through the daemon, which
# checks the pod's signatures with its own nix.conf, and the links are indirect roots.
roundtrip_nonroot() {
  local work=$1
  shift
  log "round trip: a non-root user with a nix-daemon"
  if ! command -v setpriv >/dev/null || ! command -v nix-daemon >/dev/null || ! id nobody >/dev/null 2>&1; then
    echo "SKIP non-root round trip: needs setpriv, nix-daemon and the user nobody"
    return 0
  fi
  # Its own directory: test.sh's work directory is root's alone.
  local nr state_src
  nr=$(mktemp -d /tmp/trampoline-rt-nonroot.XXXXXX)
  mkdir -p "$nr/conf" "$nr/conf-untrusted" "$nr/home" "$nr/state" "$nr/project"
  printf 'build-users-group =\nsubstituters =\ntrusted-public-keys = %s\n' "$rt_key" >"$nr/conf/nix.conf"
  printf 'build-users-group =\nsubstituters =\n' >"$nr/conf-untrusted/nix.conf"
  kubectl config view --raw --flatten >"$nr/kubeconfig"
  # This machine's keys for the instance (setup made them), for the user to ssh with.
  state_src=$(dirname "$(ls "$XDG_STATE_HOME"/trampoline/*/"$rt_namespace/$rt_name/ssh_config" | head -n 1 || true)")
  mkdir -p "$nr/state/trampoline/${state_src#"$XDG_STATE_HOME"/trampoline/}"
  cp -r "$state_src/." "$nr/state/trampoline/${state_src#"$XDG_STATE_HOME"/trampoline/}/"
  chown -R nobody:"$(id -gn nobody)" "$nr/home" "$nr/state" "$nr/project" "$nr/kubeconfig"
  chmod 711 "$nr"
  NIX_DAEMON_SOCKET_PATH=$nr/daemon.sock NIX_CONF_DIR=$nr/conf nix-daemon >"$nr/daemon.log" 2>&1 &
  local daemon=$!
  rt_daemon_pid=$daemon rt_nonroot_dir=$nr
  local deadline=$((SECONDS + 20))
  until [ -S "$nr/daemon.sock" ] || ((SECONDS > deadline)); do sleep 0.2; done
  rt_as_nobody() {
    local conf=$1
    shift
    (cd "$nr/project" && setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups env -i PATH="$PATH" HOME="$nr/home" \
      XDG_STATE_HOME="$nr/state" KUBECONFIG="$nr/kubeconfig" NIX_REMOTE=daemon NIX_DAEMON_SOCKET_PATH="$nr/daemon.sock" \
      NIX_CONF_DIR="$conf" "$node_bin" "$root/bin/trampoline.js" "$@")
  }
  local out first code=0
  out=$(rt_as_nobody "$nr/conf" build "$@" -f roundtrip.nix one --json -- --argstr salt "rt-nobody-$$" 2>"$work/nobody.err") || true
  first=$(json_field outputs.0 <<<"$out" 2>/dev/null || true)
  check "non-root: ./result made by the user, through the daemon ($(tail -n 1 "$work/nobody.err"))" \
    bash -c '[ -n "$2" ] && [ "$(readlink "$1/result")" = "$2" ] && [ "$(stat -c %U "$1/result")" = nobody ]' _ "$nr/project" "$first"
  check "non-root: the link is an indirect GC root in the store" \
    bash -c 'nix-store -q --roots "$1" 2>/dev/null | grep -qF "$2/result ->"' _ "$first" "$nr/project"
  out=$(rt_as_nobody "$nr/conf-untrusted" build "$@" -f roundtrip.nix one --json -- --argstr salt "rt-untrusted-$$" 2>"$work/untrusted.err") || code=$?
  check "non-root without the pod's key in nix.conf: refused before building (exit $code, want 7)" \
    bash -c '[ "$1" = 7 ] && grep -q "checked before building" "$2" && grep -q "extra-trusted-public-keys" "$2"' _ "$code" "$work/untrusted.err"
  kill "$daemon" 2>/dev/null || true
  wait "$daemon" 2>/dev/null || true
  rm -rf "$nr"
}

# 2. Evaluate here, build in the pod: no push involved.
roundtrip_eval_local() {
  local work=$1
  shift
  log "round trip: build --eval local"
  local dir=$work/eval-local out
  mkdir -p "$dir" && cp "$root/test/e2e/local-eval.nix" "$dir/" && cd "$dir"
  out=$(tramp build "$@" --eval local -f local-eval.nix --json -- --arg busyboxDir "$rt_busybox" --argstr salt "le-$$" 2>"$work/eval-local.err") || true
  check "--eval local -f (relative to here): ./result with the pod's build" \
    test "$(cat result 2>/dev/null)" = "evaluated-on-the-laptop le-$$"
  check "--eval local: rooted in the pod under the file's name" \
    test "$(tramp shell "$@" -- readlink /nix/var/nix/gcroots/trampoline/local-eval.nix)" = "$(json_field outputs.0 <<<"$out")"

  # A flake whose input is a local path (the builder: this machine's busybox).
  local flake=$work/flake
  mkdir -p "$flake/tools" && cp /bin/busybox "$flake/tools/busybox"
  rt_repo "$flake/project" README "a flake with a path input"
  cat >"$flake/project/flake.nix" <<EOF
{
  inputs.tools = { url = "path:$flake/tools"; flake = false; };
  outputs = { self, tools }:
    let
      build = system: derivation {
        name = "roundtrip-flake";
        inherit system;
        builder = "\${tools}/busybox";
        args = [ "sh" "-c" "echo flake-$$ \${system} > \$out" ];
      };
    in {
      packages.x86_64-linux.default = build "x86_64-linux";
      packages.aarch64-linux.default = build "aarch64-linux";
    };
}
EOF
  rt_git -C "$flake/project" add -A && rt_git -C "$flake/project" commit -qm flake
  cd "$flake/project"
  out=$(tramp build "$@" --eval local --json 2>"$work/eval-flake.err") || true
  check "--eval local, a flake with a path input, no installable: packages.<pod system>.default ($(cat result 2>/dev/null))" \
    test "$(cat result 2>/dev/null)" = "flake-$$ $rt_system"
}

# 4. Architectures.
roundtrip_arch() {
  local work=$1 namespace=$2 name=$3
  shift 3
  log "round trip: architectures"
  local out state_file
  out=$(tramp status "$@" --json 2>/dev/null) || true
  check "status --json shows the pod's Nix system ($(json_field 0.system <<<"$out"))" test "$(json_field 0.system <<<"$out")" = "$rt_system"
  state_file=$(ls "$XDG_STATE_HOME"/trampoline/*/"$namespace/$name/pod-system" 2>/dev/null | head -n 1 || true)
  check "the system is cached locally for this pod" \
    bash -c 'grep -qF "\"system\":\"$2\"" "$1" && grep -qF "$3" "$1"' _ "${state_file:-/nonexistent}" "$rt_system" \
    "$(kubectl get pod "trampoline-$name" -n "$namespace" -o jsonpath='{.metadata.uid}' 2>/dev/null)"

  cd "$rt_project"
  # --impure: hello.nix reads the pod's /opt/busybox, outside the flake.
  out=$(tramp build "$@" --remote-only --json -- --impure 2>"$work/flake-pod.err") || true
  check "build of the pushed flake, no installable: the pod's packages.<system>.default" \
    grep -q -- '-hello-trampoline$' <<<"$(json_field outputs.0 <<<"$out" 2>/dev/null)"

  # An arch no node has: refused at once, naming the cluster's, and nothing created.
  local arch=s390x code=0 started=$SECONDS
  [ "$(kubectl get nodes -o jsonpath='{.items[0].metadata.labels.kubernetes\.io/arch}' 2>/dev/null)" = s390x ] && arch=riscv64
  tramp setup --name "$name-arch" -n "$namespace" "${pod_options[@]}" --arch "$arch" --timeout 5m >/dev/null 2>"$work/arch.err" || code=$?
  check "setup --arch $arch with no such node fails within seconds (exit $code, $((SECONDS - started))s)" \
    test "$code" = 6 -a $((SECONDS - started)) -lt 30
  check "and names the arches the cluster has ($(grep -o 'it has: [^)]*' "$work/arch.err"))" grep -Eq "no node of this cluster has arch $arch \(it has: [a-z0-9]+" "$work/arch.err"
  check "and creates nothing" test -z "$(kubectl get pods,pvc -n "$namespace" -l "app.kubernetes.io/instance=$name-arch" -o name 2>&1)"
  tramp clean --name "$name-arch" -n "$namespace" --quiet >/dev/null 2>&1 || true
}

# 5. The pod as a remote builder for this machine's Nix.
roundtrip_builder() {
  local work=$1
  shift
  log "round trip: builder (the pod as this machine's remote builder)"
  local sock=$work/builder.sock line config out pid
  # node itself in the background, so that Ctrl-C (SIGINT) reaches it, not a subshell.
  "$node_bin" "$root/bin/trampoline.js" builder "$@" --socket "$sock" --json >"$work/builder.out" 2>"$work/builder.err" &
  pid=$!
  rt_builder_pid=$pid
  local deadline=$((SECONDS + 60))
  until [ -S "$sock" ] && [ -s "$work/builder.out" ] || ((SECONDS > deadline)) || ! kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  line=$(json_field machine <"$work/builder.out" 2>/dev/null || true)
  config=$(json_field sshConfig <"$work/builder.out" 2>/dev/null || true)
  check "builder serves and prints its machines line ($line)" grep -q "^ssh-ng://trampoline-builder-[a-z0-9-]* $rt_system " <<<"$line"
  check "its socket is its owner's alone (0600)" test "$(stat -c %a "$sock" 2>/dev/null)" = 600
  # --max-jobs 0: no local build slot, so the build hook must send it to the pod. As root
  # without a daemon, NIX_SSHOPTS reaches the hook's ssh (a daemon would read root's ssh config).
  out=$(NIX_SSHOPTS="-F $config" nix --extra-experimental-features nix-command build --no-link --json --max-jobs 0 --builders "$line" \
    --option build-users-group '' --option substituters '' \
    -f "$root/test/e2e/local-eval.nix" --arg busyboxDir "$rt_busybox" --argstr salt "builder-$$" 2>"$work/builder-build.err" | json_field 0.outputs.out) || true
  check "a local nix build ran on the builder ($(grep -o "building .* on '[^']*'" "$work/builder-build.err" | head -n 1))" \
    test "$(cat "$out" 2>/dev/null)" = "evaluated-on-the-laptop builder-$$"
  check "it was built in the pod, and signed there with the instance key" \
    tramp shell "$@" -- sh -c 'nix path-info --sigs "$1" | grep -qF -- "$2"' _ "$out" "${rt_key%%:*}"
  check "the builder's SSH end runs nothing but Nix's programs" \
    bash -c '! ssh -F "$1" "${2#ssh-ng://}" id </dev/null >/dev/null 2>&1' _ "$config" "${line%% *}"
  kill -INT "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 15))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  check "Ctrl-C stops the builder and removes its socket" bash -c '! kill -0 "$1" 2>/dev/null && [ ! -e "$2" ]' _ "$pid" "$sock"
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
