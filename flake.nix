{
  description = "trampoline: a Kubernetes cluster as a Nix build machine and a home for coding-agent sessions";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      isLinux = pkgs: pkgs.stdenv.hostPlatform.isLinux;
    in
    {
      packages = forAllSystems (pkgs:
        {
          trampoline = pkgs.callPackage ./package.nix { nodejs = pkgs.nodejs_24; };
          default = self.packages.${pkgs.system}.trampoline;
        }
        # The build pod's image: Linux only, for the pod's architecture (build it on, or
        # for, aarch64-linux to get an arm64 image).
        // nixpkgs.lib.optionalAttrs (isLinux pkgs) {
          image = import ./container/image/production.nix { inherit pkgs; };
        });

      apps = forAllSystems (pkgs: {
        default = {
          type = "app";
          program = "${self.packages.${pkgs.system}.trampoline}/bin/trampoline";
        };
      });

      devShells = forAllSystems (pkgs: {
        default = import ./devshell.nix {
          inherit pkgs;
          trampoline = self.packages.${pkgs.system}.trampoline;
        };
      });

      # `nix flake check`: the package builds (typecheck + bundle), the unit tests pass, the
      # dev shell evaluates, and every shell script passes shellcheck (./test.sh lint).
      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.system}.trampoline;
        # The same build with vitest run after it (scripts/**/*.test.ts: pure functions, plus
        # git and a shell for the push's local side; no cluster).
        unit = self.packages.${pkgs.system}.trampoline.overrideAttrs (old: {
          pname = "${old.pname}-unit";
          doCheck = true;
          nativeCheckInputs = [ pkgs.git ];
          checkPhase = ''
            runHook preCheck
            export HOME=$TMPDIR
            npx vitest run
            runHook postCheck
          '';
        });
        devShell = self.devShells.${pkgs.system}.default;
        shellcheck = pkgs.runCommand "trampoline-shellcheck" { nativeBuildInputs = [ pkgs.shellcheck pkgs.bash ]; } ''
          cd ${./.}
          bash test/lint.sh
          touch $out
        '';
      });

      formatter = forAllSystems (pkgs: pkgs.nixpkgs-fmt);
    };
}
