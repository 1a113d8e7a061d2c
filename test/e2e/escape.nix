# A probe of the build sandbox, for the escape suite: what the builder can see and who it
# is. Every salt is a new derivation, so each attempt really builds.
{ salt, deterministic ? true }:
let
  busyboxDir = builtins.path { path = /opt/busybox; name = "busybox"; };
  bb = "${busyboxDir}/busybox";
in
derivation {
  name = "escape-probe";
  system = builtins.currentSystem;
  builder = bb;
  args = [
    "sh"
    "-c"
    ''
      exec > $out
      echo "salt ${salt}"
      echo "uid $(${bb} id -u)"
      ${bb} grep CapEff /proc/self/status
      for p in /opt/trampoline /etc/trampoline/signing /nix/var/nix/daemon-socket /run/trampoline /proc/1/root/etc/trampoline; do
        if [ -e $p ]; then echo "sees $p"; fi
      done
      echo "devices $(${bb} ls /dev | ${bb} wc -l)"
      ${if deterministic then "" else "${bb} head -c 16 /dev/urandom | ${bb} od -An -tx1"}
    ''
  ];
}
