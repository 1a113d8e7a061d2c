{
  description = "end-to-end test flake: no inputs, builds offline";
  outputs = { self }: {
    packages.x86_64-linux.default = import ./hello.nix { };
    packages.aarch64-linux.default = import ./hello.nix { };
  };
}
