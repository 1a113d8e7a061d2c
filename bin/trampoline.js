#!/usr/bin/env node
// Entry point: the compiled CLI when built (npm/Nix packages), the TypeScript sources in a
// checkout (Node >= 22.18 runs them directly).
//
// The CLI needs Node >= 22.19: @kubernetes/client-node 2 loads undici 8, which crashes on
// older. On an older Node this file starts itself again on the Node pinned with the package
// (the `node` npm dependency) and passes argv, stdio, the exit code and signals through.
// Up to the version check it must stay plain enough for any Node since 18 (`engines`).
const MINIMUM = [22, 19]
// Set in the restarted process: if that one is too old as well, say so instead of looping.
const REEXEC_GUARD = 'TRAMPOLINE_REEXEC_NODE'
// A signal meant for this process alone reaches the restarted one after this long (see below).
const FORWARD_AFTER_MS = 5500

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < MINIMUM[0] || (major === MINIMUM[0] && minor < MINIMUM[1])) {
  await restartOnPinnedNode()
} else {
  // Not for what trampoline starts in turn (ssh's ProxyCommand, agent shells, nix).
  delete process.env[REEXEC_GUARD]
  // Most of a short command's time is loading @kubernetes/client-node: keep V8's compiled
  // code across runs (in the OS temp dir; NODE_DISABLE_COMPILE_CACHE=1 turns it off).
  const { enableCompileCache } = await import('node:module')
  enableCompileCache?.()
  const { existsSync } = await import('node:fs')
  const compiled = new URL('../dist/cli.js', import.meta.url)
  const { main } = await import(existsSync(compiled) ? compiled.href : new URL('../scripts/cli.ts', import.meta.url).href)
  await main()
}

/** Exits 70 saying why no Node fit and what to do; `checkout`: run from the sources (only
 * a checkout has scripts/; the packages ship dist/). */
function tooOld(why, checkout) {
  process.stderr.write(
    `trampoline: Node ${process.versions.node} is too old (needs >= ${MINIMUM.join('.')}: @kubernetes/client-node 2 does not load on older),\n` +
      `  ${why}.\n` +
      (checkout
        ? '  In a checkout, `npm ci` installs it (npm must run install scripts).\n'
        : '  `npm install -g nix-trampoline` installs it when npm runs the `node` package\'s install script\n' +
          '  (npm 11 and older do by default). Or put a Node >= 22.19 first on PATH, or use the Nix package.\n'),
  )
  process.exit(70)
}

/** The binary of the `node` package, resolved from this file's real location (so global
 * installs, local installs and checkouts alike), or undefined when it is not installed. */
async function pinnedNode() {
  const { createRequire } = await import('node:module')
  const { readFileSync, accessSync, constants } = await import('node:fs')
  const { dirname, resolve } = await import('node:path')
  try {
    const manifest = createRequire(import.meta.url).resolve('node/package.json')
    const { name, bin } = JSON.parse(readFileSync(manifest, 'utf8'))
    const relative = typeof bin === 'string' ? bin : bin?.node
    if (name !== 'node' || typeof relative !== 'string') return undefined
    const path = resolve(dirname(manifest), relative)
    accessSync(path, constants.X_OK)
    return path
  } catch {
    return undefined
  }
}

async function restartOnPinnedNode() {
  const { existsSync } = await import('node:fs')
  const checkout = existsSync(new URL('../scripts/cli.ts', import.meta.url))
  const guard = process.env[REEXEC_GUARD]
  if (guard) tooOld(`and so is the pinned Node it was restarted on (${guard})`, checkout)
  const node = await pinnedNode()
  if (!node) tooOld('and the Node pinned with it (the `node` npm package) is not installed', checkout)

  const { spawn } = await import('node:child_process')
  const { fileURLToPath } = await import('node:url')
  const { constants } = await import('node:os')
  // Ctrl-C, Ctrl-\, a closing terminal, `timeout` and `kill %job` signal the whole process
  // group: the child, in this group, has the signal already, and a second one would cut its
  // cleanup short (trampoline exits at once on the second). So a signal is passed on only if
  // the child still runs after its own cleanup deadline (5 s): then it was meant for this
  // process alone (`kill <pid>`), and arrives late but arrives.
  // The handlers go in before the child starts: it may be running (and its group signalled)
  // before spawn() returns, and an unhandled SIGINT would kill this process and orphan it.
  let child
  const handlers = new Map()
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) {
    const handler = () => setTimeout(() => child.kill(signal), FORWARD_AFTER_MS).unref()
    handlers.set(signal, handler)
    process.on(signal, handler)
  }

  child = spawn(node, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [REEXEC_GUARD]: node },
  })

  child.on('error', (error) => tooOld(`and the pinned Node ${node} does not start (${error.message})`, checkout))
  child.on('exit', (code, signal) => {
    for (const [name, handler] of handlers) process.off(name, handler)
    if (code !== null) process.exit(code)
    // Killed by a signal: die of the same one, so our parent sees what the child saw.
    process.kill(process.pid, signal)
    setTimeout(() => process.exit(128 + (constants.signals[signal] ?? 1)), 1000).unref()
  })
}
