# A build that takes a while, to prove the idle monitor never stops a pod mid-build.
{ seconds ? 60, salt ? "" }:
let
  # Trampoline images carry a static busybox alone in /opt/busybox (a real directory).
  # Imported as a directory, it is invoked as .../busybox and dispatches on argv[1].
  busyboxDir = builtins.path { path = /opt/busybox; name = "busybox"; };
  busybox = "${busyboxDir}/busybox";
in
derivation {
  name = "slow-build";
  system = builtins.currentSystem;
  builder = busybox;
  args = [ "sh" "-c" "${busybox} sleep ${toString seconds}; echo ${salt} > $out" ];
}
