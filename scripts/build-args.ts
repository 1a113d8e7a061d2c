// The `nix build` the build command runs in the pod, and reading its result. Pure, so it is
// unit-tested. `--json` instead of `--print-out-paths`: the latter needs Nix >= 2.9 and
// images may carry Debian's 2.8; --json has the same shape from 2.4 on.
import { GC_ROOTS_DIR } from './pod/contract.ts'

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

/**
 * One entry of `nix build --json`, per installable in order: a derivation's outputs by name
 * (`outputs`), or a plain store path (`path`). The same shape from Nix 2.4 on.
 */
export type BuildResult = { outputs: Record<string, string> } | { path: string }

/** `nix build --json`'s last line, read defensively: anything else gives []. */
export function parseBuildResults(stdout: string): BuildResult[] {
  const text = stdout.trim()
  if (!text) return []
  let results: unknown
  try {
    results = JSON.parse(text.split('\n').pop()!)
  } catch {
    return []
  }
  if (!Array.isArray(results)) return []
  const parsed: BuildResult[] = []
  for (const result of results as { outputs?: Record<string, unknown>; path?: unknown }[]) {
    if (typeof result?.path === 'string') {
      parsed.push({ path: result.path })
      continue
    }
    const outputs: Record<string, string> = {}
    for (const [name, path] of Object.entries(result?.outputs ?? {})) if (typeof path === 'string') outputs[name] = path
    if (Object.keys(outputs).length) parsed.push({ outputs })
  }
  return parsed
}

/** The store paths of build results, in nix's order. */
export function resultPaths(results: BuildResult[]): string[] {
  return results.flatMap((result) => ('path' in result ? [result.path] : Object.values(result.outputs)))
}

/** Store paths from `nix build --json`: derivations give `outputs`, plain paths `path`. */
export function parseBuildOutputs(stdout: string): string[] {
  return resultPaths(parseBuildResults(stdout))
}

export interface OutLink {
  /** The symlink (absolute when `base` is). */
  link: string
  /** The store path it points at. */
  path: string
}

/**
 * The links `nix build --out-link <base>` makes, named exactly as nix build names them
 * (src/nix/build.cc): the i-th installable adds `-<i>` for i > 0, an output other than
 * `out` adds `-<output>`, in the output names' sorted order. So ./result, ./result-dev,
 * ./result-1, ./result-1-man...
 */
export function outLinks(base: string, results: BuildResult[]): OutLink[] {
  const links: OutLink[] = []
  results.forEach((result, i) => {
    const stem = i ? `${base}-${i}` : base
    if ('path' in result) {
      links.push({ link: stem, path: result.path })
      return
    }
    for (const name of Object.keys(result.outputs).sort()) {
      links.push({ link: name === 'out' ? stem : `${stem}-${name}`, path: result.outputs[name] })
    }
  })
  return links
}

/** Where the pod roots a request's results: the links `nix build --out-link` would make there. */
export function podRootLinks(request: Pick<BuildRequest, 'file' | 'installables'>, results: BuildResult[]): OutLink[] {
  return outLinks(`${GC_ROOTS_DIR}/${gcRootName(request)}`, results)
}

export interface LocalEvalRequest extends BuildRequest {
  /** `ssh-ng://<alias>`: where the build runs. */
  store: string
  /**
   * The pod's Nix system when it differs from the laptop's: evaluation is for the pod, so
   * `builtins.currentSystem` is the pod's and a flake with no installable named builds
   * `packages.<pod system>.default` (nix picks its default attributes by this setting).
   */
  system?: string
}

/** Remote argv (user container) that makes each link a symlink to its path; both travel as arguments, not code. */
export function podRootArgv(links: OutLink[]): string[] {
  const script = 'while [ $# -gt 1 ]; do ln -sfn "$1" "$2"; shift 2; done'
  return ['sh', '-c', script, 'trampoline-roots', ...links.flatMap(({ link, path }) => [path, link])]
}

/**
 * `nix build` on the laptop that evaluates here and builds in the pod: the derivations go
 * over ssh-ng (content-addressed .drv files and sources, which the pod's untrusted user
 * may add) and the pod's daemon builds them. --no-link: a remote store has no local links;
 * the results come home afterwards with signature checks. --json, not --print-out-paths:
 * the laptop's Nix may be 2.8.
 */
export function localEvalArgv(request: LocalEvalRequest): string[] {
  return [
    ...NIX_FEATURES,
    'build',
    '--json',
    '--no-link',
    '--store',
    request.store,
    '--eval-store',
    'auto',
    ...(request.system ? ['--option', 'system', request.system] : []),
    ...(request.file ? ['--file', request.file] : []),
    ...request.installables,
    ...request.passthrough,
  ]
}
