# shellcheck shell=bash
# What the workspace benchmarks share: sourced by receive.sh, sh-local.sh and workspace.sh.

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
