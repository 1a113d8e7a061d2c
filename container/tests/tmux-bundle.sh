#!/usr/bin/env bash
# tmux-bundle.sh DIR: a self-contained tmux in DIR (bin/tmux, its own loader and libraries,
# a few terminfo entries), made from this Debian host's tmux. The tests' stand-in for
# nixpkgs#tmux: the pods' images have no tmux, and the tests are offline. It runs on any
# glibc-free or older-glibc image too (the nixos/nix image has no /lib64 loader), because
# bin/tmux starts tmux through the bundled loader instead of the system's:
#   container tests: the user adds DIR to the pod's store, agent-session.sh --provide-tmux
#                    realises that store path and roots it
#   e2e:             the host adds DIR to its store and signs it into the local binary
#                    cache; `trampoline claude --tmux <path>` has the pod substitute it
set -euo pipefail

out=$1
tmux=$(PATH=/usr/bin:/bin command -v tmux) || { echo "tmux-bundle: this host has no tmux (apt-get install tmux)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib" "$out/libexec" "$out/share/terminfo"
cp -L "$tmux" "$out/libexec/tmux"
# ldd: "libx.so.N => /path (0x...)" for libraries, "/lib64/ld-linux-....so.2 (0x...)" for the loader.
loader=''
while read -r first second third _; do
  if [ "$second" = '=>' ] && [ -f "$third" ]; then
    cp -L "$third" "$out/lib/$first"
  elif [[ $first == /* ]] && [ -f "$first" ]; then
    loader=$first
  fi
done < <(ldd "$tmux")
[ -n "$loader" ] || { echo "tmux-bundle: no loader in ldd $tmux" >&2; exit 1; }
cp -L "$loader" "$out/lib/ld.so"
for entry in x/xterm x/xterm-256color s/screen s/screen-256color t/tmux t/tmux-256color d/dumb v/vt100 l/linux; do
  for dir in /usr/share/terminfo /lib/terminfo /etc/terminfo; do
    if [ -f "$dir/$entry" ]; then mkdir -p "$out/share/terminfo/${entry%/*}"; cp -L "$dir/$entry" "$out/share/terminfo/$entry"; break; fi
  done
done
cat > "$out/bin/tmux" <<'WRAPPER'
#!/bin/sh
# tmux with the loader and libraries beside it (a test stand-in for nixpkgs#tmux).
here=$(dirname "$(dirname "$0")")
TERMINFO_DIRS=$here/share/terminfo${TERMINFO_DIRS:+:$TERMINFO_DIRS}
export TERMINFO_DIRS
exec "$here/lib/ld.so" --library-path "$here/lib" "$here/libexec/tmux" "$@"
WRAPPER
chmod -R a+rX,go-w "$out"
chmod 0755 "$out/bin/tmux" "$out/libexec/tmux" "$out/lib/ld.so"
