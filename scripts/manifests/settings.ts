// From command-line values to pod and store settings. An option the user gives wins; one
// they leave out keeps what the existing pod (or PVC) has, else the template's default,
// so a plain `trampoline setup` never undoes an earlier `setup --cpu 8`. Pure.
import { parseDuration } from '../units.ts'
import { PULL_POLICIES, type CacheSettings, type PodSettings, type PullPolicy, type ResourceSetting, type StoreSettings } from './pod.ts'

/** A Kubernetes quantity as people type them: 2, 500m, 1.5, 8Gi, 20G. */
const QUANTITY = /^\d+(\.\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/

export function isQuantity(text: string): boolean {
  return QUANTITY.test(text)
}

/** "2" (request = limit), "2:4" (request 2, limit 4) or "2:" (request 2, no limit). */
export function parseResource(option: string, text: string): ResourceSetting {
  const [request, limit, extra] = text.trim().split(':')
  if (extra !== undefined || !isQuantity(request) || (limit && !isQuantity(limit))) {
    throw new Error(`--${option} "${text}" is not REQUEST[:LIMIT] with Kubernetes quantities (e.g. 4, 500m, 8Gi, 2Gi:8Gi)`)
  }
  if (limit === undefined) return { request, limit: request }
  return limit === '' ? { request } : { request, limit }
}

export function parseArch(text: string): string {
  if (!/^[a-z0-9]+$/.test(text)) throw new Error(`--arch "${text}" is not an architecture name like amd64 or arm64`)
  return text
}

export function parsePullPolicy(text: string): PullPolicy {
  const found = PULL_POLICIES.find((p) => p.toLowerCase() === text.toLowerCase())
  if (!found) throw new Error(`--pull-policy must be one of ${PULL_POLICIES.join(', ')}`)
  return found
}

export function parseSize(option: string, text: string): string {
  if (!isQuantity(text) || /m$/.test(text)) throw new Error(`--${option} "${text}" is not a size like 20Gi or 100G`)
  return text
}

export function parseIdleTimeout(text: string): number {
  try {
    return parseDuration(text)
  } catch {
    throw new Error(`--idle-timeout "${text}" is not a duration (examples: 30m, 2h, 900s, 0 to never stop)`)
  }
}

/** What the user typed, already parsed; undefined = not given. */
export interface SettingOptions {
  image?: string
  pullPolicy?: PullPolicy
  cpu?: ResourceSetting
  memory?: ResourceSetting
  /** '' means "any architecture" (drop an earlier --arch). */
  arch?: string
  idleTimeoutSeconds?: number
  caches?: CacheSettings
  /** [] drops earlier ones. */
  imagePullSecrets?: string[]
}

export function resolvePodSettings(options: SettingOptions, existing: PodSettings | undefined, defaults: PodSettings): PodSettings {
  const base = existing ?? defaults
  const arch = options.arch === undefined ? base.arch : options.arch || undefined
  const settings: PodSettings = {
    image: options.image ?? base.image,
    pullPolicy: options.pullPolicy ?? base.pullPolicy,
    cpu: options.cpu ?? base.cpu,
    memory: options.memory ?? base.memory,
    idleTimeoutSeconds: options.idleTimeoutSeconds ?? base.idleTimeoutSeconds,
  }
  if (arch) settings.arch = arch
  const caches = options.caches ?? base.caches ?? defaults.caches
  if (caches) settings.caches = caches
  const pullSecrets = options.imagePullSecrets ?? base.imagePullSecrets
  if (pullSecrets?.length) settings.imagePullSecrets = pullSecrets
  return settings
}

export function resolveStoreSettings(options: Partial<StoreSettings>, existing: StoreSettings | undefined, defaults: StoreSettings): StoreSettings {
  const base = existing ?? defaults
  const storageClass = options.storageClass ?? base.storageClass
  return { size: options.size ?? base.size, ...(storageClass ? { storageClass } : {}) }
}

function describeResource(r: ResourceSetting): string {
  return r.limit === undefined ? `${r.request} (no limit)` : r.limit === r.request ? r.request : `${r.request}:${r.limit}`
}

/** "image a -> b, cpu 1 -> 4": what differs between two settings, for "recreating because...". */
export function describeChanges(before: PodSettings, after: PodSettings): string[] {
  const changes: string[] = []
  const show = (name: string, a: string, b: string) => {
    if (a !== b) changes.push(`${name} ${a} -> ${b}`)
  }
  show('image', before.image, after.image)
  show('pull policy', before.pullPolicy, after.pullPolicy)
  show('cpu', describeResource(before.cpu), describeResource(after.cpu))
  show('memory', describeResource(before.memory), describeResource(after.memory))
  show('arch', before.arch ?? 'any', after.arch ?? 'any')
  show('idle timeout', `${before.idleTimeoutSeconds}s`, `${after.idleTimeoutSeconds}s`)
  show('binary caches', describeCaches(before.caches), describeCaches(after.caches))
  show('trusted keys', (before.caches?.trustedPublicKeys ?? []).join(' ') || 'none', (after.caches?.trustedPublicKeys ?? []).join(' ') || 'none')
  show('image pull secrets', (before.imagePullSecrets ?? []).join(',') || 'none', (after.imagePullSecrets ?? []).join(',') || 'none')
  return changes
}

/** cache.nixos.org: what a pod substitutes from unless told otherwise (--no-default-cache). */
export const DEFAULT_CACHE: CacheSettings = {
  substituters: ['https://cache.nixos.org/'],
  trustedPublicKeys: ['cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY='],
}

export interface CacheOptions {
  substituter?: string[]
  trustedPublicKey?: string[]
  /** false: --no-default-cache. */
  defaultCache?: boolean
}

const NIX_PUBLIC_KEY = /^[A-Za-z0-9._-]+:[A-Za-z0-9+/]{43}=$/

/**
 * The cache options, or undefined when none was given (the pod keeps what it has). Any of
 * them describes the whole list: the default cache (unless --no-default-cache) plus the
 * --substituter/--trusted-public-key given now.
 */
export function parseCacheOptions(options: CacheOptions): CacheSettings | undefined {
  const substituters = options.substituter ?? []
  const keys = options.trustedPublicKey ?? []
  if (!substituters.length && !keys.length && options.defaultCache === undefined) return undefined
  for (const url of substituters) {
    if (!/^[a-z][a-z0-9+.-]*:\/\/\S+$/.test(url)) throw new Error(`--substituter "${url}" is not a store URL like https://cache.example.org or s3://bucket`)
  }
  for (const key of keys) {
    if (!NIX_PUBLIC_KEY.test(key)) throw new Error(`--trusted-public-key "${key}" is not a Nix public key (name:base64, as in trusted-public-keys)`)
  }
  const base = options.defaultCache === false ? { substituters: [], trustedPublicKeys: [] } : DEFAULT_CACHE
  const unique = (list: string[]) => [...new Set(list)]
  return { substituters: unique([...base.substituters, ...substituters]), trustedPublicKeys: unique([...base.trustedPublicKeys, ...keys]) }
}

/** "cache.nixos.org, http://10.0.0.5:8080" or "none". */
export function describeCaches(caches: CacheSettings | undefined): string {
  if (!caches) return 'Nix default'
  return caches.substituters.length ? caches.substituters.join(', ') : 'none'
}
