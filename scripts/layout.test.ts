// The layering CLAUDE.md's Layout describes, checked from the sources: kube/ is transport
// and imports nothing of trampoline but errors, log and units; manifests/ builds objects
// from the instance's names and the contract only; the pod contract's names and paths are
// spelled in pod/contract.ts only.
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const scripts = fileURLToPath(new URL('.', import.meta.url))

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [path] : []
  })
}

/** Relative specifiers of static imports, re-exports and dynamic imports. */
function relativeImports(text: string): string[] {
  const found = [...text.matchAll(/\bfrom\s+'(\.[^']*)'|\bimport\s*\(\s*'(\.[^']*)'\s*\)|^import\s+'(\.[^']*)'/gm)]
  return found.map((m) => m[1] ?? m[2] ?? m[3])
}

/** The imports of dir's modules that leave dir and are not in `allowed` (paths under scripts/). */
function importsOutside(dir: string, file: string, allowed: string[]): string[] {
  const ok = new Set(allowed.map((path) => join(scripts, path)))
  return relativeImports(readFileSync(file, 'utf8'))
    .map((spec) => join(dirname(file), spec))
    .filter((target) => !target.startsWith(`${dir}/`) && !ok.has(target))
    .map((target) => relative(scripts, target))
}

const modulesOf = (dir: string) => sources(dir).map((file) => [relative(scripts, file), file])

describe('kube/ is transport only', () => {
  const kube = join(scripts, 'kube')
  it.each(modulesOf(kube))('%s imports only kube/, errors, log and units', (_, file) => {
    expect(importsOutside(kube, file, ['errors.ts', 'log.ts', 'units.ts']), 'pod logic belongs in scripts/pod/').toEqual([])
  })

  it('finds imports of every form', () => {
    expect(relativeImports("import { a } from '../x.ts'\nexport { b } from './y.ts'\nconst c = await import('../z.ts')\nimport '../w.ts'")).toEqual(['../x.ts', './y.ts', '../z.ts', '../w.ts'])
  })
})

describe('manifests/ stays pure: no cluster, pod or command code', () => {
  const manifests = join(scripts, 'manifests')
  it.each(modulesOf(manifests))('%s imports only manifests/, the instance names, units and the contract', (_, file) => {
    expect(importsOutside(manifests, file, ['instance.ts', 'units.ts', 'package-dir.ts', 'pod/contract.ts']), 'I/O belongs in scripts/pod/').toEqual([])
  })
})

describe('the pod contract has one home', () => {
  // String literals that start with an in-pod path or name of the contract. Prose names the
  // paths too: help texts never as the start of a quoted string, and comment lines are skipped.
  const literals = [/['"`]\/opt\/trampoline/, /['"`]\/run\/trampoline/, /['"`]\/etc\/trampoline/, /['"`]\/workspace\b/, /['"`]\/nix\/var\/nix\/gcroots\/trampoline/, /['"`]idle:/, /['"`]store-init['"`]/]
  const contract = join(scripts, 'pod', 'contract.ts')
  it.each(sources(scripts).filter((file) => file !== contract).map((file) => [relative(scripts, file), file]))('%s takes contract literals from pod/contract.ts', (_, file) => {
    const lines = readFileSync(file, 'utf8').split('\n')
    const code = (line: string) => !/^\s*(\/\/|\*|\/\*)/.test(line)
    const hits = lines.flatMap((line, i) => (code(line) && literals.some((re) => re.test(line)) ? [`${i + 1}: ${line.trim()}`] : []))
    expect(hits, 'import the name from scripts/pod/contract.ts').toEqual([])
  })
})
