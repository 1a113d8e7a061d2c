import { describe, expect, it } from 'vitest'
import { builderAlias, machineLine, remoteArgv, renderBuilderSshConfig } from './builder.ts'

describe('remoteArgv: what an SSH session may run in the daemon container', () => {
  it('maps ssh-ng\'s nix-daemon --stdio to a fixed script, trusted as root with the pod daemon\'s options', () => {
    for (const requested of ['nix-daemon --stdio', '/nix/var/nix/profiles/default/bin/nix-daemon --stdio']) {
      const argv = remoteArgv(requested)!
      expect(argv.slice(0, 2)).toEqual(['sh', '-c'])
      expect(argv[2]).toMatch(/exec nix-daemon --stdio "\$@"$/)
      expect(argv[2]).toMatch(/unset NIX_REMOTE/)
      expect(argv[2]).toMatch(/secret-key-files "\$TRAMPOLINE_SIGNING_KEY"/)
    }
    // The client's words never reach the shell: whatever path it names, the script is the same.
    expect(remoteArgv('/any/where/nix-daemon --stdio')).toEqual(remoteArgv('nix-daemon --stdio'))
  })

  it('maps the legacy ssh:// program too', () => {
    expect(remoteArgv('nix-store --serve --write')![2]).toMatch(/exec nix-store --serve --write "\$@"$/)
    expect(remoteArgv('nix-store --serve')![2]).toMatch(/exec nix-store --serve "\$@"$/)
  })

  it('refuses anything else', () => {
    for (const requested of ['id', 'sh -c id', 'nix-daemon', 'nix-daemon --stdio; id', 'nix-daemon --stdio --option sandbox false', 'nix-store --serve --write x', '']) {
      expect(remoteArgv(requested)).toBeUndefined()
    }
  })
})

describe('machines line and ssh_config', () => {
  const hostPublicKey = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAzG6P+rryEu25UtyS2xdoaosF0+iTfXhH5neb1wj6rV builder-host@x\n'

  it('names the alias, system, client key, jobs, features and the pinned host key (base64 of the key line)', () => {
    const line = machineLine({ alias: builderAlias('x'), system: 'aarch64-linux', clientKeyFile: '/s/builder_client_ed25519', maxJobs: 4, speedFactor: 2, features: ['big-parallel', 'kvm'], hostPublicKey })
    const fields = line.split(' ')
    expect(fields.slice(0, 7)).toEqual(['ssh-ng://trampoline-builder-x', 'aarch64-linux', '/s/builder_client_ed25519', '4', '2', 'big-parallel,kvm', '-'])
    expect(Buffer.from(fields[7], 'base64').toString()).toBe('ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAzG6P+rryEu25UtyS2xdoaosF0+iTfXhH5neb1wj6rV')
  })

  it('refuses paths Nix cannot hold', () => {
    expect(() => machineLine({ alias: 'a', system: 's', clientKeyFile: '/with space/k', maxJobs: 1, speedFactor: 1, features: [], hostPublicKey })).toThrow(/whitespace/)
  })

  it('reaches the socket through builder --connect, with its own key and pinned host key', () => {
    const config = renderBuilderSshConfig({ alias: 'trampoline-builder-x', trampoline: ['/usr/bin/node', '/opt/t/bin/trampoline.js'], socket: '/s/builder.sock', clientKeyFile: '/s/k', knownHostsFile: '/s/kh' })
    expect(config).toContain('Host trampoline-builder-x\n')
    expect(config).toContain('  ProxyCommand /usr/bin/node /opt/t/bin/trampoline.js builder --connect /s/builder.sock\n')
    expect(config).toContain('  StrictHostKeyChecking yes\n')
    expect(config).toContain('  IdentitiesOnly yes\n')
  })
})
