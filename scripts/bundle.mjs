// `npm run build`: bundles the CLI (scripts/cli.ts and everything it imports, dependencies
// included) with esbuild into dist/, what bin/trampoline.js runs in the npm and Nix packages.
//
//   node scripts/bundle.mjs [OUTDIR]      (default: dist, next to this file's parent)
//
// Why a bundle: started from node_modules, `trampoline --version` read ~1,600 module files
// (868 of them @kubernetes/client-node). Here the entry, dist/cli.js, holds yargs and the
// command registry only; each command is a chunk (dist/chunks/) imported when it runs, and
// client-node and the other heavy dependencies come with it. ssh2 stays in node_modules
// (optional native parts). Plain JavaScript, so that it runs on any Node npm runs on.
import { rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const outdir = resolve(process.argv[2] ?? resolve(root, 'dist'))

/**
 * string-width (in yargs, cliui and wrap-ansi, three copies) builds an Intl.Segmenter and
 * Unicode-set regular expressions as it loads: ~35 ms, a third of `--version`, which never
 * measures a string, and of `--help`, whose text is plain ASCII. Each `import stringWidth
 * from 'string-width'` gets a stand-in that answers for printable ASCII itself (one column
 * per character, as every string-width version does) and otherwise loads the real module,
 * the importer's own copy, on first use: esbuild evaluates a module reached through
 * require() only when that require() runs.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, async (args) => {
      if (args.pluginData?.real) return undefined
      const real = await b.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { real: true } })
      if (real.errors.length) return { errors: real.errors }
      return { path: real.path, namespace: 'lazy-string-width' }
    })
    b.onLoad({ filter: /.*/, namespace: 'lazy-string-width' }, (args) => ({
      contents:
        'let real\n' +
        'export default function stringWidth(string, options) {\n' +
        "  if (typeof string === 'string' && /^[\\x20-\\x7e]*$/.test(string)) return string.length\n" +
        `  real ??= require(${JSON.stringify(args.path)}).default\n` +
        '  return real(string, options)\n' +
        '}\n',
      resolveDir: dirname(args.path),
      loader: 'js',
    }))
  },
}

rmSync(outdir, { recursive: true, force: true })
const result = await build({
  absWorkingDir: root,
  entryPoints: {
    cli: 'scripts/cli.ts',
    // Not needed by the CLI (its code is in a chunk like the rest): test/install.sh checks
    // that the package has this file. Drop both together.
    'manifests/template': 'scripts/manifests/template.ts',
  },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22.19',
  chunkNames: 'chunks/[name]-[hash]',
  // ssh2 loads optional native addons with require() in try/catch: left to node_modules.
  external: ['ssh2'],
  // Bundled CommonJS code calls require() (node: built-ins, optional packages such as
  // bufferutil): an ES module has none, so each output file gets one of its own.
  banner: { js: "import { createRequire as __trampolineCreateRequire } from 'node:module'; const require = __trampolineCreateRequire(import.meta.url);" },
  // Less to read and compile on every start (client-node alone is ~5 MB of source);
  // names are kept so that stack traces stay readable.
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  plugins: [lazyStringWidth],
  logLevel: 'warning',
  metafile: true,
})
if (result.errors.length) process.exit(1)
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0)
const files = Object.keys(result.metafile.outputs).length
process.stderr.write(`bundle: ${files} files, ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${outdir}\n`)
// Resolve-only check: the one dependency left outside the bundle is installed.
createRequire(import.meta.url).resolve('ssh2')
