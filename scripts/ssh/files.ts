// The instance's SSH files on disk (written by setup) and the ssh_config that points
// system ssh and Nix at them.
import type { CommandContext, GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { selfCommand } from '../self.ts'
import { hostAlias, renderSshConfig } from './config.ts'
import { HOST_PUBLIC_KEY_FILE, KNOWN_HOSTS_FILE, USER_KEY_FILE } from './keys.ts'

export interface SshFiles {
  alias: string
  configFile: string
  identityFile: string
  knownHostsFile: string
}

export const SSH_CONFIG_FILE = 'ssh_config'

export function readSshCredentials(context: CommandContext): { privateKey: string; hostPublicKey: string } {
  const privateKey = context.state.read(USER_KEY_FILE)
  const hostPublicKey = context.state.read(HOST_PUBLIC_KEY_FILE)
  if (!privateKey || !hostPublicKey) {
    throw new UserError(`no SSH keys for instance "${context.names.instance}" on this machine`, {
      hint: `Run: trampoline setup --name ${context.names.instance}  (it creates or recovers them)`,
      exitCode: ExitCode.notFound,
    })
  }
  return { privateKey, hostPublicKey }
}

/** Render ssh_config for the instance (setup already wrote the keys and known_hosts). */
export function writeSshFiles(context: CommandContext, options: Pick<GlobalOptions, 'kubeconfig'>): SshFiles {
  readSshCredentials(context)
  const instance = context.names.instance
  const files: SshFiles = {
    alias: hostAlias(instance),
    configFile: context.state.path(SSH_CONFIG_FILE),
    identityFile: context.state.path(USER_KEY_FILE),
    knownHostsFile: context.state.path(KNOWN_HOSTS_FILE),
  }
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
