# The end-to-end build: no network and no nixpkgs, only the static busybox every
# trampoline image carries (imported into the store at evaluation).
# salt: a fresh derivation per run, so a store that already has it proves nothing.
{ salt ? "" }:
let
  # Trampoline images carry a static busybox alone in /opt/busybox (a real directory).
  # Imported as a directory, it is invoked as .../busybox and dispatches on argv[1].
  busyboxDir = builtins.path { path = /opt/busybox; name = "busybox"; };
  busybox = "${busyboxDir}/busybox";
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
      echo "${salt}" > $out/salt
    ''
  ];
}
