// Where this package's own files are (package.json, bin/, container/), found from this
// module's location: scripts/ in a checkout, dist/ (bundled, its chunks in dist/ itself)
// in the npm and Nix packages. Neither scripts/ nor dist/ has a package.json of its own.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

let found: string | undefined

/** The nearest directory at or above this module's that holds a package.json. */
export function packageDir(): string {
  if (found) return found
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`)
    dir = parent
  }
  return (found = dir)
}

/** The version in this package's package.json. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageDir(), 'package.json'), 'utf8')) as { version: string }).version
}
