# shellcheck shell=bash
# What the benchmarks share: sourced by run.sh, startup.sh, receive.sh, sh-local.sh and workspace.sh.

# build_package ROOT DIR NODE: the package as npm and Nix ship it, in DIR: `npm run build`'s
# bundle (dist/) beside bin/, container/ and package.json, with ROOT's node_modules (ssh2
# stays external). Users run that build, not the sources: module loading differs a lot.
build_package() {
  local root=$1 dir=$2 node=$3
  mkdir -p "$dir"
  cp -R "$root/bin" "$root/container" "$root/package.json" "$dir/"
  ln -s "$root/node_modules" "$dir/node_modules"
  "$node" "$root/scripts/bundle.mjs" "$dir/dist" 2>"$dir/build.err" || { cat "$dir/build.err" >&2; return 1; }
}

# bench_repo DIR FILES BYTES: a git repository in DIR (made, then committed on main) of FILES
# files of about BYTES bytes each, spread over 100 directories: an agent's large work tree.
bench_repo() {
  local dir=$1 files=$2 bytes=$3 payload d i
  mkdir -p "$dir"
  git -C "$dir" init -q -b main
  payload=$(head -c "$bytes" /dev/zero | tr '\0' x)
  for ((d = 0; d < 100; d++)); do
    mkdir -p "$dir/d$d"
    for ((i = d; i < files; i += 100)); do printf '%s %d\n' "$payload" "$i" >"$dir/d$d/f$i.txt"; done
  done
  git -C "$dir" add -A
  git -C "$dir" -c user.email=bench@trampoline -c user.name=bench commit -qm "bench tree"
}
