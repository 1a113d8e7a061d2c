// The instance's SSH files on disk (written by setup) and the ssh_config that points
// system ssh and Nix at them.
import type { CommandContext, GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { selfCommand } from '../self.ts'
import { hostAlias, knownHostsLine, renderSshConfig } from './config.ts'

export interface SshFiles {
  alias: string
  configFile: string
  identityFile: string
  knownHostsFile: string
}

export const IDENTITY_FILE = 'id_ed25519'
export const KNOWN_HOSTS_FILE = 'known_hosts'
export const HOST_KEY_FILE = 'host_ed25519.pub'
export const SSH_CONFIG_FILE = 'ssh_config'

export function readSshCredentials(context: CommandContext): { privateKey: string; hostPublicKey: string } {
  const privateKey = context.state.read(IDENTITY_FILE)
  const hostPublicKey = context.state.read(HOST_KEY_FILE)
  if (!privateKey || !hostPublicKey) {
    throw new UserError(`no SSH keys for instance "${context.names.instance}" on this machine`, {
      hint: `Run: trampoline setup --name ${context.names.instance}  (it creates or recovers them)`,
      exitCode: ExitCode.notFound,
    })
  }
  return { privateKey, hostPublicKey }
}

/** Render ssh_config and known_hosts for the instance; returns where they are. */
export function writeSshFiles(context: CommandContext, options: Pick<GlobalOptions, 'kubeconfig'>): SshFiles {
  const { hostPublicKey } = readSshCredentials(context)
  const instance = context.names.instance
  const files: SshFiles = {
    alias: hostAlias(instance),
    configFile: context.state.path(SSH_CONFIG_FILE),
    identityFile: context.state.path(IDENTITY_FILE),
    knownHostsFile: context.state.path(KNOWN_HOSTS_FILE),
  }
  context.state.write(KNOWN_HOSTS_FILE, knownHostsLine(instance, hostPublicKey))
  context.state.write(
    SSH_CONFIG_FILE,
    renderSshConfig({
      instance,
      trampoline: selfCommand(),
      kubeconfig: options.kubeconfig ?? process.env.KUBECONFIG?.split(':')[0],
      context: context.cluster.context,
      namespace: context.cluster.namespace,
      identityFile: files.identityFile,
      knownHostsFile: files.knownHostsFile,
    }),
  )
  return files
}

/** Environment for a local nix talking ssh-ng:// to the pod: NIX_SSHOPTS names our config. */
export function nixSshEnv(files: SshFiles, env = process.env): NodeJS.ProcessEnv {
  // Nix splits NIX_SSHOPTS on whitespace: the path must not contain any.
  if (/\s/.test(files.configFile)) {
    throw new UserError(`the state directory path contains whitespace (${files.configFile}); Nix cannot pass it to ssh`, {
      hint: 'Set XDG_STATE_HOME to a path without spaces.',
      exitCode: ExitCode.local,
    })
  }
  return { ...env, NIX_SSHOPTS: `-F ${files.configFile}` }
}
