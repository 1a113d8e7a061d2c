// Store paths sent to the pod stay there until the user drops them: maintenance's GC keeps
// what is rooted under GC_ROOTS_DIR, and a copied closure or an archived flake is as
// deliberate as a build result. The naming and the remote command are pure; one exec adds
// all the roots.
import { realpathSync } from 'node:fs'
import type { CommandContext } from '../context.ts'
import { debug, warn } from '../log.ts'
import { captureInPod } from './run.ts'
import { GC_ROOTS_DIR } from './contract.ts'

export type RootKind = 'copied' | 'flake'

const STORE_PATH = /^\/nix\/store\/[0-9a-z]{32}-[^/]+/

/** The top-level store path a local argument stands for (./result, a file inside a path), if any. */
export function storePathOf(argument: string, resolve: (path: string) => string = realpathSync): string | undefined {
  let resolved = argument
  try {
    resolved = resolve(argument)
  } catch {
    // Not a local file: maybe a path the local store does not have, or an installable.
  }
  return STORE_PATH.exec(resolved)?.[0]
}

/** `copied-<hash>-<name>`: one root per store path and kind, so copying twice is harmless. */
export function rootName(kind: RootKind, storePath: string): string {
  return `${kind}-${storePath.slice('/nix/store/'.length)}`
}

/** Remote argv that symlinks each path into GC_ROOTS_DIR; paths and names travel as arguments, not code. */
export function addRootsArgv(kind: RootKind, storePaths: string[]): string[] {
  const script = 'dir=$1; shift; while [ $# -gt 1 ]; do ln -sfn "$1" "$dir/$2"; shift 2; done'
  return ['sh', '-c', script, 'trampoline-roots', GC_ROOTS_DIR, ...storePaths.flatMap((path) => [path, rootName(kind, path)])]
}

/** Root the paths in the pod; a failure only warns (the copy itself succeeded). */
export async function addRootsInPod(context: CommandContext, kind: RootKind, storePaths: string[]): Promise<void> {
  const paths = [...new Set(storePaths.filter((path) => STORE_PATH.test(path)))]
  if (!paths.length) return
  const result = await captureInPod(context, addRootsArgv(kind, paths))
  if (result.exitCode !== 0) {
    warn(`could not add GC roots for ${paths.length} path(s) (maintenance may collect them): ${result.stderr.trim()}`)
    return
  }
  debug(`GC roots: ${paths.map((path) => `${GC_ROOTS_DIR}/${rootName(kind, path)}`).join(', ')}`)
}
