// The `nix build` the build command runs in the pod, and reading its result. Pure, so it is
// unit-tested. `--json` instead of `--print-out-paths`: the latter needs Nix >= 2.9 and
// images may carry Debian's 2.8; --json has the same shape from 2.4 on.
import { GC_ROOTS_DIR } from './workspace.ts'

export const NIX_FEATURES = ['--extra-experimental-features', 'nix-command flakes']

export interface BuildRequest {
  /** `-f file.nix`: build attributes of a Nix file instead of a flake. */
  file?: string
  installables: string[]
  /** Everything after `--`, passed to nix build as is. */
  passthrough: string[]
}

/**
 * A stable root name per thing built, so rebuilding it replaces its root (the store does
 * not grow with every build) while different targets keep theirs: `.#hello` -> `hello`.
 */
export function gcRootName({ file, installables }: Pick<BuildRequest, 'file' | 'installables'>): string {
  const parts = [...(file ? [file.replace(/^.*\//, '')] : []), ...installables.map((i) => i.replace(/^\.?#/, ''))]
  const name = parts
    .join('+')
    .replace(/[^A-Za-z0-9._+-]+/g, '_')
    .replace(/^[._+-]+|[._+-]+$/g, '')
    .slice(0, 100)
  return name || 'default'
}

/**
 * argv for the pod. `--out-link` into GC_ROOTS_DIR makes nix itself root every output as
 * it finishes (no window for a concurrent GC); nix names them <root>, <root>-dev, <root>-1...
 */
export function nixBuildArgv(request: BuildRequest): string[] {
  return [
    'nix',
    ...NIX_FEATURES,
    'build',
    '--json',
    '--out-link',
    `${GC_ROOTS_DIR}/${gcRootName(request)}`,
    ...(request.file ? ['--file', request.file] : []),
    ...request.installables,
    ...request.passthrough,
  ]
}

/** Store paths from `nix build --json`: derivations give `outputs`, plain paths `path`. */
export function parseBuildOutputs(stdout: string): string[] {
  const text = stdout.trim()
  if (!text) return []
  let results: unknown
  try {
    results = JSON.parse(text.split('\n').pop()!)
  } catch {
    return []
  }
  if (!Array.isArray(results)) return []
  const paths: string[] = []
  for (const result of results as { outputs?: Record<string, unknown>; path?: unknown }[]) {
    if (typeof result?.path === 'string') paths.push(result.path)
    for (const path of Object.values(result?.outputs ?? {})) if (typeof path === 'string') paths.push(path)
  }
  return paths
}
