// The instance's SSH identity: an ed25519 host key (lives in the cluster Secret, mounted
// into the pod) and a user key per laptop (private half local, public half in the Secret's
// authorized_keys). The cluster API is the trusted channel for the host key: we pin what
// the Secret holds, never what a server presents on first connect.
import ssh2 from 'ssh2'
import type { V1Secret } from '@kubernetes/client-node'
import type { Cluster } from '../kube/client.ts'
import { explainApiError, isConflict } from '../kube/client.ts'
import { readOptionalSecret } from '../pod/objects.ts'
import type { InstanceNames } from '../instance.ts'
import type { InstanceState } from '../state.ts'
import { buildSshSecret, decodeSecretData, SSH_SECRET_KEYS } from '../manifests/secret.ts'
import { debug } from '../log.ts'
import { ExitCode, UserError } from '../errors.ts'

const { utils } = ssh2

/** Local state files (0600, see state.ts). ssh/files.ts reads the same names. */
export const USER_KEY_FILE = 'id_ed25519'
export const USER_PUBLIC_KEY_FILE = 'id_ed25519.pub'
export const HOST_PUBLIC_KEY_FILE = 'host_ed25519.pub'
export const KNOWN_HOSTS_FILE = 'known_hosts'

export interface KeyPair {
  /** OpenSSH private key (PEM-like, no passphrase: it only opens this one pod). */
  privateKey: string
  /** One line: `ssh-ed25519 AAAA... comment`. */
  publicKey: string
}

export function generateKeyPair(comment: string): KeyPair {
  // ssh2 1.17 drops a leading zero byte of the ed25519 public key (1 key in 256), which
  // leaves a pair that neither it nor sshd can read: generate again until it reads back.
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519', { comment })
    const publicKey = `${pair.public.trim()}\n`
    if (publicKeyOf(pair.private, comment) === publicKey) return { privateKey: pair.private, publicKey }
  }
}

/** The `type base64` part of a public key line (comments differ between copies of one key). */
export function publicKeyIdentity(publicKeyLine: string): string {
  const [type, data] = publicKeyLine.trim().split(/\s+/)
  if (!type || !data) throw new Error(`not an OpenSSH public key line: ${publicKeyLine.slice(0, 40)}`)
  return `${type} ${data}`
}

/** The public key line of a private key, or undefined when the text is not a key we can read. */
export function publicKeyOf(privateKey: string, comment = ''): string | undefined {
  const parsed = utils.parseKey(privateKey)
  if (parsed instanceof Error) return undefined
  const key = Array.isArray(parsed) ? parsed[0] : parsed
  if (!key) return undefined
  return `${key.type} ${key.getPublicSSH().toString('base64')}${comment ? ` ${comment}` : ''}\n`
}

/** A known_hosts line pinning `hostPublicKey` for the ssh_config host alias. */
export function knownHostsEntry(alias: string, hostPublicKey: string): string {
  return `${alias} ${publicKeyIdentity(hostPublicKey)}\n`
}

/** authorized_keys with `publicKey` added once; other laptops' keys stay. */
export function withAuthorizedKey(authorizedKeys: string, publicKey: string): string {
  const wanted = publicKeyIdentity(publicKey)
  const lines = authorizedKeys.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  if (lines.some((line) => sameKey(line, wanted))) return lines.map((l) => `${l}\n`).join('')
  return [...lines, publicKey.trim()].map((l) => `${l}\n`).join('')
}

function sameKey(line: string, identity: string): boolean {
  try {
    return publicKeyIdentity(line) === identity
  } catch {
    return false
  }
}

/** A comment that tells whose key it is when someone reads authorized_keys in the pod. */
export function userKeyComment(owner: string, instance: string): string {
  return `${owner}@trampoline-${instance}`
}

export interface SshIdentity {
  hostPublicKey: string
  userPublicKey: string
  /** authorized_keys as the Secret now holds it. */
  authorizedKeys: string
  /** A new Secret, hence a new host key: a running pod still has the old one. */
  secretCreated: boolean
  /** This machine's key was added: a running pod copied authorized_keys at start. */
  keyAdded: boolean
  /** What changed, for the setup summary ("created", "added this machine's key"...). */
  changes: string[]
}

export interface SshKeyTarget {
  cluster: Cluster
  names: InstanceNames
  labels: Record<string, string>
  owner: string
  state: InstanceState
}

/**
 * Make the cluster Secret and the local state agree, creating what is missing:
 * - no Secret: new host key; this machine's user key (reused if present) is authorized.
 * - Secret but no local private key (another laptop, wiped state): new user key, appended.
 * - local host pin differs from the Secret: the instance was re-created; re-pin from the API.
 * Writes id_ed25519, id_ed25519.pub, host_ed25519.pub and known_hosts (alias `alias`).
 */
export async function syncSshKeys(target: SshKeyTarget, alias: string): Promise<SshIdentity> {
  const { cluster, names, state } = target
  const changes: string[] = []
  const userKey = localUserKey(target, changes)
  let secret = await readSecret(target)
  let secretCreated = false
  if (!secret) {
    const host = generateKeyPair(`host@trampoline-${names.instance}`)
    const body = buildSshSecret({
      names,
      labels: target.labels,
      hostPrivateKey: host.privateKey,
      hostPublicKey: host.publicKey,
      authorizedKeys: withAuthorizedKey('', userKey.publicKey),
    })
    try {
      secret = await cluster.core.createNamespacedSecret({ namespace: cluster.namespace, body })
      secretCreated = true
      changes.push(`created SSH secret ${names.sshSecret}`)
    } catch (error) {
      // Another setup won the race: use its host key, add our user key below.
      if (!isConflict(error)) throw explainApiError(error, cluster, `create secret ${names.sshSecret}`)
      secret = await readSecret(target)
      if (!secret) throw explainApiError(error, cluster, `create secret ${names.sshSecret}`)
    }
  }

  const data = decodeSecretData(secret)
  // Secrets made by hand (kustomization.yaml's recipe) may lack the .pub: derive it.
  const hostPublicKey = data[SSH_SECRET_KEYS.hostPublicKey] || publicKeyOf(data[SSH_SECRET_KEYS.hostPrivateKey] ?? '')
  if (!hostPublicKey) {
    throw new UserError(`secret ${names.sshSecret} holds no usable ${SSH_SECRET_KEYS.hostPrivateKey}`, {
      hint: `Delete it (trampoline clean --keep-store keeps the store) and run setup again to make new keys.`,
      exitCode: ExitCode.failure,
    })
  }
  const authorized = await authorizeKey(target, secret, userKey.publicKey)
  const keyAdded = authorized.changed && !secretCreated
  if (keyAdded) changes.push("authorized this machine's SSH key")

  const previousPin = state.read(HOST_PUBLIC_KEY_FILE)
  if (previousPin && publicKeyIdentity(previousPin) !== publicKeyIdentity(hostPublicKey)) {
    changes.push(`the host key of instance "${names.instance}" changed in the cluster (it was re-created): pinned the new one`)
  }
  state.write(HOST_PUBLIC_KEY_FILE, `${publicKeyIdentity(hostPublicKey)}\n`)
  state.write(KNOWN_HOSTS_FILE, knownHostsEntry(alias, hostPublicKey))
  return { hostPublicKey, userPublicKey: userKey.publicKey, authorizedKeys: authorized.authorizedKeys, secretCreated, keyAdded, changes }
}

/** The local user key, generated when missing or unreadable. */
function localUserKey(target: SshKeyTarget, changes: string[]): KeyPair {
  const { state, owner, names } = target
  const comment = userKeyComment(owner, names.instance)
  const existing = state.read(USER_KEY_FILE)
  const publicKey = existing ? publicKeyOf(existing, comment) : undefined
  if (existing && publicKey) {
    if (state.read(USER_PUBLIC_KEY_FILE) !== publicKey) state.write(USER_PUBLIC_KEY_FILE, publicKey)
    return { privateKey: existing, publicKey }
  }
  debug(existing ? 'the local SSH key is unreadable; making a new one' : 'no local SSH key; making one')
  const pair = generateKeyPair(comment)
  state.write(USER_KEY_FILE, pair.privateKey)
  state.write(USER_PUBLIC_KEY_FILE, pair.publicKey)
  changes.push('generated an SSH key for this machine')
  return pair
}

function readSecret({ cluster, names }: SshKeyTarget): Promise<V1Secret | undefined> {
  return readOptionalSecret(cluster, names.sshSecret)
}

/**
 * Add `publicKey` to the Secret's authorized_keys unless it is there.
 * Replaces with the read resourceVersion, so two laptops adding keys at once cannot lose one.
 */
async function authorizeKey(target: SshKeyTarget, secret: V1Secret, publicKey: string): Promise<{ changed: boolean; authorizedKeys: string }> {
  const { cluster, names } = target
  for (let attempt = 0; ; attempt++) {
    const authorized = decodeSecretData(secret)[SSH_SECRET_KEYS.authorizedKeys] ?? ''
    const updated = withAuthorizedKey(authorized, publicKey)
    if (updated === authorized) return { changed: false, authorizedKeys: authorized }
    const body: V1Secret = {
      ...secret,
      data: { ...secret.data, [SSH_SECRET_KEYS.authorizedKeys]: Buffer.from(updated).toString('base64') },
    }
    try {
      await cluster.core.replaceNamespacedSecret({ name: names.sshSecret, namespace: cluster.namespace, body })
      return { changed: true, authorizedKeys: updated }
    } catch (error) {
      if (!isConflict(error) || attempt >= 3) throw explainApiError(error, cluster, `update secret ${names.sshSecret}`)
      const fresh = await readSecret(target)
      if (!fresh) throw explainApiError(error, cluster, `update secret ${names.sshSecret}`)
      secret = fresh
    }
  }
}
