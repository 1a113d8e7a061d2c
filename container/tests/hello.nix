# An offline build: no nixpkgs, no network, only the static busybox the images carry at
# /opt/busybox (imported as a directory, it runs as .../busybox and dispatches on argv[1]).
# Its output records whether the build ran in Nix's sandbox (build dir /build).
let
  busybox = "${builtins.path { path = /opt/busybox; name = "busybox"; }}/busybox";
in
derivation {
  name = "hello-trampoline";
  system = builtins.currentSystem;
  builder = busybox;
  args = [
    "sh"
    "-c"
    ''
      ${busybox} mkdir -p $out/bin
      printf '#!%s sh\necho "Hello from trampoline"\n' ${busybox} > $out/bin/hello
      ${busybox} chmod +x $out/bin/hello
      echo "$NIX_BUILD_TOP" > $out/build-dir
      if ${busybox} wget -q -T 2 -O /dev/null http://127.0.0.1:2222/ 2>/dev/null; then echo yes; else echo no; fi > $out/network
    ''
  ];
}
