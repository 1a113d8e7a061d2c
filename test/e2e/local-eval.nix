# Evaluated on the laptop, built in the pod (nix build --store ssh-ng://... --eval-store
# auto): the builder is the laptop's own static busybox, imported as a directory (so it
# runs as .../busybox and dispatches on argv[1]).
{ busyboxDir, salt }:
let
  bb = "${builtins.path { path = busyboxDir; name = "busybox"; }}/busybox";
in
derivation {
  name = "local-eval";
  system = builtins.currentSystem;
  builder = bb;
  args = [ "sh" "-c" "echo evaluated-on-the-laptop ${salt} > $out" ];
}
