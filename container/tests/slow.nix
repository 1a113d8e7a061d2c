# A build that takes a while (the idle monitor must not stop the pod under it).
{ seconds ? "8", salt ? "" }:
let
  busybox = "${builtins.path { path = /opt/busybox; name = "busybox"; }}/busybox";
in
derivation {
  name = "slow-build";
  system = builtins.currentSystem;
  builder = busybox;
  args = [ "sh" "-c" "${busybox} sleep ${seconds}; echo ${salt} > $out" ];
}
