import { describe, expect, it } from 'vitest'
import { hostAlias, instanceFromAlias, proxyCommand, publicKeyBlob, renderSshConfig, shellQuote } from './config.ts'

const input = {
  instance: 'myproj',
  trampoline: ['/usr/bin/node', '/opt/tramp/bin/trampoline.js'],
  context: 'kind-dev',
  namespace: 'builds',
  identityFile: '/home/me/.local/state/trampoline/kind-dev/builds/myproj/id_ed25519',
  knownHostsFile: '/home/me/.local/state/trampoline/kind-dev/builds/myproj/known_hosts',
}

describe('ssh_config rendering', () => {
  it('pins the host key strictly and never disables checking', () => {
    const config = renderSshConfig(input)
    expect(config).toContain('Host trampoline-myproj\n')
    expect(config).toContain('  StrictHostKeyChecking yes\n')
    expect(config).toContain(`  UserKnownHostsFile ${input.knownHostsFile}\n`)
    expect(config).toContain(`  IdentityFile ${input.identityFile}\n`)
    expect(config).toContain('  IdentitiesOnly yes\n')
    expect(config).not.toMatch(/StrictHostKeyChecking (no|accept-new)/)
  })

  it('runs trampoline proxy with the cluster coordinates and leaves %h for ssh', () => {
    expect(proxyCommand(input)).toBe(
      '/usr/bin/node /opt/tramp/bin/trampoline.js --context kind-dev --namespace builds --name myproj --quiet proxy %h',
    )
  })

  it('quotes paths with spaces for sh and doubles literal percent signs for ssh', () => {
    const command = proxyCommand({ ...input, kubeconfig: '/Users/me/Library/Application Support/k 100%.yaml' })
    expect(command).toContain(`--kubeconfig '/Users/me/Library/Application Support/k 100%%.yaml'`)
    const config = renderSshConfig({ ...input, identityFile: '/a b/id' })
    expect(config).toContain('  IdentityFile "/a b/id"\n')
  })

  it('quotes shell words only when needed', () => {
    expect(shellQuote('plain-word_1.2')).toBe('plain-word_1.2')
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
  })
})

describe('host aliases', () => {
  it('round-trips instance names', () => {
    expect(instanceFromAlias(hostAlias('web-2'))).toBe('web-2')
    expect(instanceFromAlias('example.com')).toBeUndefined()
    expect(instanceFromAlias('trampoline-')).toBeUndefined()
    expect(instanceFromAlias('trampoline-Bad')).toBeUndefined()
  })
})

describe('pinned keys', () => {
  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB2c3xNq8wdl2dT6b6q1Yj7H9i2rGJx8aXv4Q0zT1m8k host'

  it('decodes the wire blob that ssh2 hands to hostVerifier', () => {
    const blob = publicKeyBlob(key)
    // SSH wire format: uint32 length + "ssh-ed25519" + uint32 length + 32-byte key.
    expect(blob.readUInt32BE(0)).toBe(11)
    expect(blob.subarray(4, 15).toString()).toBe('ssh-ed25519')
    expect(blob.length).toBe(4 + 11 + 4 + 32)
    expect(() => publicKeyBlob('garbage')).toThrow()
  })
})
