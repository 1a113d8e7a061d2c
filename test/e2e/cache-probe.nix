# Something only a binary cache can give the pod: it needs a system feature the pod does
# not have, so the pod can never build it, only substitute it. The test host builds it
# (with that feature) and serves it from a local binary cache.
{ salt }:
let
  busyboxDir = builtins.path { path = /opt/busybox; name = "busybox"; };
  bb = "${busyboxDir}/busybox";
in
derivation {
  name = "cache-probe";
  system = builtins.currentSystem;
  builder = bb;
  requiredSystemFeatures = [ "trampoline-cache-test" ];
  args = [ "sh" "-c" "echo built-on-the-host ${salt} > $out" ];
}
