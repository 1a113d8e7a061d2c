# `nix develop`: the tool itself plus what people drive a cluster with.
{ pkgs, trampoline }:

pkgs.mkShell {
  packages = [
    trampoline
    pkgs.nodejs_24
    pkgs.kubectl
    pkgs.minikube
    pkgs.k9s
    pkgs.nix
    pkgs.openssh
    pkgs.git
  ];

  shellHook = ''
    echo "trampoline dev shell: trampoline, node $(node --version), kubectl, minikube, k9s"
    echo "  npm ci && npm test    unit tests     ./test.sh    the end-to-end journey"
  '';
}
