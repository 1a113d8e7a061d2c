# A build that fails on purpose: its failure must reach the user as a non-zero exit.
let
  # Trampoline images carry a static busybox alone in /opt/busybox (a real directory).
  # Imported as a directory, it is invoked as .../busybox and dispatches on argv[1].
  busyboxDir = builtins.path { path = /opt/busybox; name = "busybox"; };
  busybox = "${busyboxDir}/busybox";
in
derivation {
  name = "fails-on-purpose";
  system = builtins.currentSystem;
  builder = busybox;
  args = [ "sh" "-c" "echo 'this build fails on purpose' >&2; exit 3" ];
}
