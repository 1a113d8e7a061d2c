// Which helper a command may use: the socket is keyed by everything that decides what a
// command talks to (API server, kubeconfig context, user and credentials, namespace,
// instance, this CLI's version), so that a changed kubeconfig or another cluster never
// reaches a helper holding the old connection: it gets another socket, hence a helper of
// its own (the old one ends when idle). Pure apart from reading credential files' contents.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Selection } from '../kube/kubeconfig.ts'
import { MUX_PROTOCOL } from './protocol.ts'

export interface MuxIdentity {
  server: string
  context: string
  cluster: Record<string, unknown>
  user: string | undefined
  userEntry: Record<string, unknown> | undefined
  namespace: string
  instance: string
  pod: string
  version: string
  /** sha256 of each credential file named by the entries (rotated certificates, tokens). */
  files: Record<string, string>
}

/** Kubeconfig fields naming files whose content is part of the credentials. */
const FILE_FIELDS = { cluster: ['certificate-authority'], user: ['client-certificate', 'client-key', 'token-file'] } as const

function fileDigest(path: string, read: (path: string) => Buffer): string {
  try {
    return createHash('sha256').update(read(path)).digest('hex')
  } catch (error) {
    return `unreadable: ${(error as NodeJS.ErrnoException).code ?? 'error'}`
  }
}

export function muxIdentity(
  selection: Selection,
  where: { server: string; namespace: string; instance: string; pod: string; version: string },
  read: (path: string) => Buffer = readFileSync,
): MuxIdentity {
  const files: Record<string, string> = {}
  for (const field of FILE_FIELDS.cluster) {
    const path = selection.cluster[field]
    if (typeof path === 'string' && path) files[path] = fileDigest(path, read)
  }
  for (const field of FILE_FIELDS.user) {
    const path = selection.user?.[field]
    if (typeof path === 'string' && path) files[path] = fileDigest(path, read)
  }
  return {
    server: where.server,
    context: selection.contextName,
    cluster: selection.cluster,
    user: selection.userName,
    userEntry: selection.user,
    namespace: where.namespace,
    instance: where.instance,
    pod: where.pod,
    version: where.version,
    files,
  }
}

/** JSON with sorted keys, so that equal identities hash the same however they were built. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined)
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`
  }
  return JSON.stringify(value) ?? 'null'
}

/** 24 hex digits of sha256 over the identity and the protocol version. */
export function muxKey(identity: MuxIdentity): string {
  return createHash('sha256').update(`trampoline-mux ${MUX_PROTOCOL}\n${canonical(identity)}`).digest('hex').slice(0, 24)
}

/** sun_path holds 108 bytes on Linux, 104 on macOS; stay under both with the NUL. */
export const MAX_SOCKET_PATH = 100

/**
 * The socket: `mux-<key>.sock` in the instance's state dir (0700), or, when that path is
 * too long for a Unix socket, in a 0700 directory of our own under $XDG_RUNTIME_DIR or the
 * temp dir, named by uid (`fallbackDir`, checked by the caller before use).
 */
export function muxSocketPath(stateDir: string, key: string, fallbackDir: string): { path: string; fallback: boolean } {
  const inState = join(stateDir, `mux-${key}.sock`)
  if (Buffer.byteLength(inState) <= MAX_SOCKET_PATH) return { path: inState, fallback: false }
  return { path: join(fallbackDir, `${key}.sock`), fallback: true }
}

export function fallbackSocketDir(env: NodeJS.ProcessEnv, tmp: string, uid: number): string {
  return join(env.XDG_RUNTIME_DIR || tmp, `trampoline-mux-${uid}`)
}

/** TRAMPOLINE_MUX=0 (or off/false/no) turns the helper off; anything else leaves it on. */
export function muxDisabledByEnv(env: NodeJS.ProcessEnv): boolean {
  return /^(0|off|false|no)$/i.test(env.TRAMPOLINE_MUX ?? '')
}
