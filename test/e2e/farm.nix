# Independent derivations for the build farm (test/e2e/farm.sh): each sleeps, then records
# where it ran. The sandbox hides the host name (it is always "localhost"), but not where
# its inputs come from: /proc/self/mountinfo shows the source of the busybox bind mount,
# which on a worker is that pod's emptyDir (…/pods/<pod uid>/volumes/kubernetes.io~empty-dir/…)
# and on the main pod its store volume.
# salt: fresh derivations per run; count, seconds: how many and how long.
{ salt ? "", count ? 6, seconds ? 3 }:
let
  busyboxDir = builtins.path { path = /opt/busybox; name = "busybox"; };
  busybox = "${busyboxDir}/busybox";
  one = i: derivation {
    name = "farm-${toString i}";
    system = builtins.currentSystem;
    builder = busybox;
    args = [
      "sh"
      "-c"
      ''
        ${busybox} sleep ${toString seconds}
        ${busybox} grep -m 1 ' ${busyboxDir} ' /proc/self/mountinfo > $out
        echo "${salt} ${toString i}" >> $out
      ''
    ];
  };
in
builtins.listToAttrs (map (i: { name = "d${toString i}"; value = one i; }) (builtins.genList (i: i + 1) count))
