// ssh_config for system ssh and Nix: a host alias per instance whose ProxyCommand is
// `trampoline proxy`, with the instance's own key and its pinned host key. Pure.

export const SSH_USER = 'trampoline'
export const SSH_PORT = 2222

export function hostAlias(instance: string): string {
  return `trampoline-${instance}`
}

/** The instance a host alias names, or undefined when it is not one of ours. */
export function instanceFromAlias(host: string): string | undefined {
  const match = /^trampoline-([a-z0-9]([a-z0-9-]*[a-z0-9])?)$/.exec(host)
  return match?.[1]
}

/** Quote one word for the `sh -c` that ssh runs ProxyCommand with. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/** ssh_config values with spaces must be double-quoted (paths under "Application Support"...). */
function configValue(value: string): string {
  return /[\s"]/.test(value) ? `"${value.replace(/"/g, '\\"')}"` : value
}

export interface SshConfigInput {
  instance: string
  /** argv that runs trampoline itself, e.g. [node, /path/bin/trampoline.js]. */
  trampoline: string[]
  kubeconfig?: string
  context: string
  namespace: string
  identityFile: string
  knownHostsFile: string
}

export function proxyCommand(input: SshConfigInput): string {
  const words = [...input.trampoline]
  if (input.kubeconfig) words.push('--kubeconfig', input.kubeconfig)
  words.push('--context', input.context, '--namespace', input.namespace, '--name', input.instance, '--quiet', 'proxy', '%h')
  // %h must stay unquoted for ssh to expand it; every other word is quoted for sh.
  return words.map((w) => (w === '%h' ? w : shellQuote(w).replace(/%/g, '%%'))).join(' ')
}

export function renderSshConfig(input: SshConfigInput): string {
  return [
    `Host ${hostAlias(input.instance)}`,
    `  HostName ${hostAlias(input.instance)}`,
    `  User ${SSH_USER}`,
    `  ProxyCommand ${proxyCommand(input)}`,
    `  IdentityFile ${configValue(input.identityFile)}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${configValue(input.knownHostsFile)}`,
    '  StrictHostKeyChecking yes',
    '  UpdateHostKeys no',
    '  ServerAliveInterval 30',
    '  ServerAliveCountMax 4',
    '',
  ].join('\n')
}

/** The wire-format key blob of an OpenSSH public key line, for comparing with what a server presents. */
export function publicKeyBlob(openSshPublicKey: string): Buffer {
  const data = openSshPublicKey.trim().split(/\s+/)[1]
  if (!data) throw new Error('not an OpenSSH public key line')
  return Buffer.from(data, 'base64')
}
