#!/usr/bin/env node
// Entry point: the compiled CLI when built (npm/Nix packages), the TypeScript sources in a
// checkout (Node >= 22.18 runs them directly).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  process.stderr.write(
    `trampoline: Node ${process.versions.node} is too old (needs >= 22.19; @kubernetes/client-node 2 does not load on older).\n` +
      '  Run it through npm (npx trampoline ...) so the pinned Node from node_modules is used, or use nix run.\n',
  )
  process.exit(70)
}
// Most of a short command's time is loading @kubernetes/client-node: keep V8's compiled
// code across runs (in the OS temp dir; NODE_DISABLE_COMPILE_CACHE=1 turns it off).
const { enableCompileCache } = await import('node:module')
enableCompileCache?.()
const { existsSync } = await import('node:fs')
const compiled = new URL('../dist/cli.js', import.meta.url)
const { main } = await import(existsSync(compiled) ? compiled.href : new URL('../scripts/cli.ts', import.meta.url).href)
await main()
