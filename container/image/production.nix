# The production image of the trampoline pod, built with Nix for the architecture of
# `pkgs` (build it on, or for, aarch64-linux to get an arm64 image):
#   nix build .#image && docker load < result      (or skopeo copy docker-archive:result ...)
# Nix, sshd and the tools the in-pod scripts use; Nix runs from /nix/store, which in the
# pod is the PVC: store-init copies the image's store and database onto it (and adds the
# paths of a newer image later). The closure is registered in the image's Nix database
# and rooted (/nix/var/nix/gcroots/trampoline-image), so `maintenance` never collects it.
# The scripts also ship in /opt/trampoline; in the pod the ConfigMap is mounted over them.
#
# Claude Code (`claude-code`, unfree) is included when this nixpkgs has it and allows it
# (config.allowUnfree or allowUnfreePredicate); otherwise the image is built without it,
# with a warning. Pass withClaude = false to leave it out on purpose.
{ pkgs, scripts ? ./.., withClaude ? true }:

let
  inherit (pkgs) lib;

  claudeOk = withClaude && pkgs ? claude-code
    && (builtins.tryEval pkgs.claude-code.outPath).success;
  claude = lib.warnIf (withClaude && !claudeOk)
    "trampoline image: claude-code is not available from this nixpkgs (missing, or unfree not allowed); building without it"
    (lib.optionals claudeOk [ pkgs.nodejs pkgs.claude-code ]);

  # Only the static busybox binary at /bin/busybox (offline builds use it as a builder);
  # its applets would shadow coreutils.
  busybox = pkgs.runCommand "trampoline-busybox" { } ''
    mkdir -p $out/bin
    cp ${pkgs.pkgsStatic.busybox}/bin/busybox $out/bin/busybox
  '';

  nixbldIds = lib.range 1 32;
  etc = pkgs.runCommand "trampoline-etc" { } ''
    mkdir -p $out/etc/nix $out/etc/ssh $out/etc/trampoline/ssh
    cat > $out/etc/passwd <<'EOF'
    root:x:0:0:root:/root:/bin/bash
    trampoline:x:1000:1000:trampoline:/home/trampoline:/bin/bash
    ${lib.concatMapStrings (i: "nixbld${toString i}:x:${toString (30000 + i)}:30000:Nix build user ${toString i}:/var/empty:/bin/false\n") nixbldIds}nobody:x:65534:65534:nobody:/var/empty:/bin/false
    EOF
    cat > $out/etc/group <<'EOF'
    root:x:0:
    trampoline:x:1000:
    nixbld:x:30000:${lib.concatMapStringsSep "," (i: "nixbld${toString i}") nixbldIds}
    nogroup:x:65534:
    EOF
    # '*': no password, not locked (sshd takes the user's public keys).
    cat > $out/etc/shadow <<'EOF'
    root:!:1::::::
    trampoline:*:1::::::
    EOF
    echo 'hosts: files dns' > $out/etc/nsswitch.conf
    echo 'passwd: files' >> $out/etc/nsswitch.conf
    echo 'group: files' >> $out/etc/nsswitch.conf
    echo 'shadow: files' >> $out/etc/nsswitch.conf
    echo trampoline > $out/etc/hostname
  '';

  # Just the in-pod files of container/ (not image/ or tests/).
  scriptFiles = builtins.path {
    name = "trampoline-scripts-src";
    path = scripts;
    filter = path: type: type == "regular"
      && (lib.hasSuffix ".sh" path || builtins.elem (baseNameOf path) [ "nix.conf" "sshd_config" ]);
  };
  trampolineScripts = pkgs.runCommand "trampoline-scripts" { } ''
    mkdir -p $out/opt/trampoline
    cp ${scriptFiles}/* $out/opt/trampoline/
    chmod 0555 $out/opt/trampoline/*
  '';

  env = pkgs.buildEnv {
    name = "trampoline-image-env";
    paths = with pkgs; [
      nix
      openssh
      bashInteractive
      coreutils
      findutils
      gnugrep
      gnused
      gawk
      gnutar
      gzip
      xz
      util-linux
      procps
      git
      less
      getent
      cacert
      busybox
      etc
      trampolineScripts
    ] ++ claude;
    pathsToLink = [ "/bin" "/sbin" "/lib" "/libexec" "/share" "/etc" "/opt" ];
    ignoreCollisions = true;
  };
in
# buildLayeredImage plus a Nix database registering the image's closure: without it the
# pod's nix-daemon would see its own store as garbage.
pkgs.dockerTools.buildLayeredImageWithNixDb {
  name = "trampoline";
  tag = "latest";
  contents = [ env ];
  maxLayers = 100;

  extraCommands = ''
    # Directories only one package provides may arrive as symlinks into the store;
    # make the ones we add to real directories.
    for dir in bin opt; do
      if [ -L "$dir" ]; then
        target=$(readlink -f "$dir"); rm "$dir"; mkdir "$dir"
        for f in "$target"/*; do ln -s "$f" "$dir/"; done
      fi
    done
    mkdir -p usr/bin tmp var/empty root run/trampoline run/sshd workspace home/trampoline
    ln -sfn /bin/env usr/bin/env
    ln -sfn /bin/bash bin/sh
    # The static busybox again, alone in a real directory: offline test builds import
    # /opt/busybox with builtins.path and run it as .../busybox.
    mkdir -p opt/busybox
    cp ${pkgs.pkgsStatic.busybox}/bin/busybox opt/busybox/busybox
    chmod 1777 tmp
    mkdir -p nix/var/nix/gcroots/per-user nix/var/nix/profiles/per-user nix/var/nix/daemon-socket
    chmod 1777 nix/var/nix/gcroots/per-user nix/var/nix/profiles/per-user
    mkdir -p nix/var/nix/gcroots/trampoline
    # The image's own closure stays alive on the PVC store, and is the default profile.
    ln -sfn ${env} nix/var/nix/gcroots/trampoline-image
    ln -sfn ${env} nix/var/nix/profiles/default
  '';

  fakeRootCommands = ''
    chown 1000:1000 home/trampoline workspace nix/var/nix/gcroots/trampoline
    chmod 0700 home/trampoline
  '';

  config = {
    Cmd = [ "/bin/bash" ];
    WorkingDir = "/";
    Env = [
      "PATH=/nix/var/nix/profiles/default/bin:/bin:/usr/bin:/sbin"
      "NIX_CONF_DIR=/opt/trampoline"
      "SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
      "NIX_SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt"
    ];
    Labels."org.opencontainers.image.title" = "trampoline";
  };
}
