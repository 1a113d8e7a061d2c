# The trampoline CLI, built from package-lock.json: importNpmLock fetches each locked
# package by its integrity hash, so updating dependencies needs no hand-edited hash.
{ lib, buildNpmPackage, importNpmLock, nodejs, makeWrapper }:

let
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
  pname = "trampoline";
  version = (lib.importJSON ./package.json).version;

  src = lib.fileset.toSource {
    root = ./.;
    fileset = lib.fileset.unions [
      ./package.json
      ./package-lock.json
      ./tsconfig.json
      ./tsconfig.build.json
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
  # The `node` devDependency downloads a Node binary at install time; the package uses
  # the pinned nodejs above instead, so install scripts stay off.
  npmFlags = [ "--ignore-scripts" ];

  nativeBuildInputs = [ makeWrapper ];

  npmBuildScript = "build";
  # That devDependency's bin would shadow the pinned nodejs in npm scripts: drop it.
  preBuild = ''
    rm -f node_modules/.bin/node
  '';

  postInstall = ''
    wrapProgram $out/bin/trampoline \
      --set TRAMPOLINE_SELF $out/bin/trampoline
  '';

  meta = {
    description = "Run Nix builds and coding-agent sessions in a Kubernetes pod";
    mainProgram = "trampoline";
    license = lib.licenses.mit;
  };
}
