# The round trip's builds: offline (the pod's /opt/busybox, as hello.nix; busyboxDir names
# a local copy to build the same on this machine), salted so every run's results are new
# to the local store, with a second output so nix build's result-<output> links show.
{ salt ? "", busyboxDir ? /opt/busybox }:
let
  busybox = "${builtins.path { path = busyboxDir; name = "busybox"; }}/busybox";
  twoOutputs = name: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = busybox;
    outputs = [ "out" "doc" ];
    args = [ "sh" "-c" "echo ${name} ${salt} > $out; echo ${name} doc ${salt} > $doc" ];
  };
in
{
  one = twoOutputs "roundtrip-one";
  two = twoOutputs "roundtrip-two";
}
