// `trampoline builder`: the pod as a remote builder for this machine's Nix.
//
// A remote builder must trust its client (the build hook sends input-addressed derivations
// and unsigned inputs, which Nix accepts from trusted users only), and the user container,
// where agents run, must never be trusted. So the far end is not the pod's sshd (the user
// container, UID 1000) but `nix-daemon --stdio` run as root in the nix-daemon container
// through Kubernetes exec: trusted because root is, authorised by this machine's
// kubeconfig and RBAC (create on pods/exec), the right copy-closure's import already uses.
// No key or socket in the pod grants it, so nothing in the user container can use it.
//
// Nix reaches remote builders over ssh (`ssh-ng://`). So this command serves SSH on a unix
// socket (0600, in the instance's 0700 state directory), with a host key and a client key
// of its own (local files; the pod never sees them); an ssh_config block names the socket
// through `ProxyCommand trampoline builder --connect`. Each SSH session runs one exec:
// the ssh-ng program `nix-daemon --stdio` (or the legacy ssh://'s `nix-store --serve
// --write`), mapped to a fixed command, never the client's string. While any session is
// open, one more exec in the user container counts as activity, so the idle monitor does
// not stop the pod under a build. `unix://` stores are not an option: Nix reads their
// paths from the local filesystem. The command serves in the foreground until Ctrl-C.
import type { CommandModule } from 'yargs'
import { connect } from 'node:net'
import { chmodSync, existsSync, rmSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import ssh2 from 'ssh2'
import { commandContext, printResult, type CommandContext, type GlobalOptions } from '../context.ts'
import { onInterrupt } from '../cleanup.ts'
import { runInDaemon } from '../pod/daemon.ts'
import { ExitCode, UserError } from '../errors.ts'
import type { ExecSession } from '../kube/exec.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { NETRC_SECRET_DIR, SCRIPTS_DIR } from '../pod/contract.ts'
import { NETRC_FIELD } from '../manifests/netrc-secret.ts'
import { debug, info, warn } from '../log.ts'
import { podSystem } from '../pod/system.ts'
import { runInPod } from '../pod/run.ts'
import { selfCommand } from '../self.ts'
import { publicKeyBlob, shellQuote } from '../ssh/config.ts'
import { generateKeyPair, publicKeyIdentity, publicKeyOf } from '../ssh/keys.ts'
import type { InstanceState } from '../state.ts'

const { Server, utils } = ssh2

interface BuilderArgs extends GlobalOptions {
  socket?: string
  maxJobs?: number
  speedFactor?: number
  features?: string
  print?: boolean
  connect?: string
}

/** Local state files of the builder (0600, like every state file). */
export const BUILDER_FILES = {
  socket: 'builder.sock',
  hostKey: 'builder_host_ed25519',
  clientKey: 'builder_client_ed25519',
  sshConfig: 'builder_ssh_config',
  knownHosts: 'builder_known_hosts',
} as const

/** sun_path's limit (108 on Linux, 104 on macOS): a longer socket path cannot be bound. */
const MAX_SOCKET_PATH = 100

export function builderAlias(instance: string): string {
  return `trampoline-builder-${instance}`
}

/** Exports, PATH and the pod daemon's own options (entrypoint-daemon.sh): sign builds, the pod's caches. */
const DAEMON_ENV = [
  'export NIX_CONF_DIR="${NIX_CONF_DIR:-' + SCRIPTS_DIR + '}" PATH="/nix/var/nix/profiles/default/bin:$PATH"',
  'unset NIX_REMOTE',
  'set --',
  'if [ -n "${TRAMPOLINE_SIGNING_KEY:-}" ] && [ -r "$TRAMPOLINE_SIGNING_KEY" ]; then set -- "$@" --option secret-key-files "$TRAMPOLINE_SIGNING_KEY"; fi',
  'if [ -n "${TRAMPOLINE_SUBSTITUTERS+set}" ]; then set -- "$@" --option substituters "$TRAMPOLINE_SUBSTITUTERS"; fi',
  'if [ -n "${TRAMPOLINE_TRUSTED_PUBLIC_KEYS+set}" ]; then set -- "$@" --option trusted-public-keys "$TRAMPOLINE_TRUSTED_PUBLIC_KEYS"; fi',
  'netrc="${TRAMPOLINE_NETRC_FILE:-' + NETRC_SECRET_DIR + '/' + NETRC_FIELD + '}"; if [ -r "$netrc" ]; then set -- "$@" --option netrc-file "$netrc"; fi',
]

/**
 * The command in the daemon container for what the SSH client asked to run: ssh-ng's
 * `nix-daemon --stdio` or ssh://'s `nix-store --serve [--write]`, as root with no
 * NIX_REMOTE (so it serves the store itself, trusted). Anything else: undefined.
 */
export function remoteArgv(requested: string): string[] | undefined {
  const words = requested.trim().split(/\s+/)
  const program = words[0]?.replace(/^.*\//, '')
  let run: string
  if (program === 'nix-daemon' && words.length === 2 && words[1] === '--stdio') run = 'exec nix-daemon --stdio "$@"'
  else if (program === 'nix-store' && words[1] === '--serve' && words.length <= 3 && (words.length === 2 || words[2] === '--write')) {
    run = `exec nix-store --serve${words.length === 3 ? ' --write' : ''} "$@"`
  } else return undefined
  return ['sh', '-c', [...DAEMON_ENV, run].join('\n'), 'trampoline-builder']
}

/** One line of Nix's machines format: URI, systems, ssh key, max jobs, speed factor, features, mandatory features, host key (base64). */
export function machineLine(input: { alias: string; system: string; clientKeyFile: string; maxJobs: number; speedFactor: number; features: string[]; hostPublicKey: string }): string {
  if (/\s/.test(input.clientKeyFile)) {
    throw new UserError(`the state directory path contains whitespace (${input.clientKeyFile}), which Nix's machines format cannot hold`, {
      hint: 'Set XDG_STATE_HOME to a path without spaces.',
      exitCode: ExitCode.local,
    })
  }
  const hostKey = Buffer.from(publicKeyIdentity(input.hostPublicKey)).toString('base64')
  return [`ssh-ng://${input.alias}`, input.system, input.clientKeyFile, String(input.maxJobs), String(input.speedFactor), input.features.length ? input.features.join(',') : '-', '-', hostKey].join(' ')
}

/** The ssh_config block that reaches the builder: its socket through `builder --connect`, its keys. */
export function renderBuilderSshConfig(input: { alias: string; trampoline: string[]; socket: string; clientKeyFile: string; knownHostsFile: string }): string {
  const proxy = [...input.trampoline, 'builder', '--connect', input.socket].map((word) => shellQuote(word).replace(/%/g, '%%')).join(' ')
  return [
    `Host ${input.alias}`,
    `  HostName ${input.alias}`,
    '  User nix',
    `  ProxyCommand ${proxy}`,
    `  IdentityFile ${input.clientKeyFile}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${input.knownHostsFile}`,
    '  StrictHostKeyChecking yes',
    '  UpdateHostKeys no',
    '',
  ].join('\n')
}

export function defaultSocketPath(context: Pick<CommandContext, 'state' | 'names'>, env = process.env): string {
  const inState = context.state.path(BUILDER_FILES.socket)
  if (inState.length <= MAX_SOCKET_PATH) return inState
  return `${env.XDG_RUNTIME_DIR || '/tmp'}/trampoline-${process.getuid?.() ?? 'user'}-${context.names.instance}.sock`
}

/** The builder's own host and client keys, made once per instance on this machine. */
function builderKeys(state: InstanceState, instance: string): { hostPrivateKey: string; hostPublicKey: string; clientPublicKey: string } {
  const ensure = (file: string, comment: string) => {
    let key = state.read(file)
    if (!key || !publicKeyOf(key)) {
      key = generateKeyPair(comment).privateKey
      state.write(file, key)
    }
    return key
  }
  const hostPrivateKey = ensure(BUILDER_FILES.hostKey, `builder-host@trampoline-${instance}`)
  const clientPrivateKey = ensure(BUILDER_FILES.clientKey, `builder-client@trampoline-${instance}`)
  return { hostPrivateKey, hostPublicKey: publicKeyOf(hostPrivateKey)!, clientPublicKey: publicKeyOf(clientPrivateKey)! }
}

/** A socket file left by a builder that is gone may be replaced; one that answers may not. */
async function claimSocketPath(path: string): Promise<void> {
  if (!existsSync(path)) return
  const alive = await new Promise<boolean>((done) => {
    const client = connect(path)
    client.on('connect', () => {
      client.destroy()
      done(true)
    })
    client.on('error', () => done(false))
  })
  if (alive) throw new UserError(`another builder is serving ${path}`, { hint: 'Stop it first, or pass --socket with another path.', exitCode: ExitCode.local })
  rmSync(path, { force: true })
}

/** `builder --connect SOCKET`: ssh's ProxyCommand, stdin and stdout to the socket and back. */
function bridge(socket: string): Promise<void> {
  return new Promise((done, fail) => {
    const connection = connect(socket)
    connection.on('error', (error) =>
      fail(new UserError(`cannot reach the builder at ${socket}: ${error.message}`, { hint: 'Is trampoline builder running?', exitCode: ExitCode.local })),
    )
    connection.on('connect', () => {
      process.stdin.pipe(connection)
      connection.pipe(process.stdout)
    })
    connection.on('close', () => done())
  })
}

/** Holds one exec in the user container while builds run: the idle monitor counts it as activity. */
class Activity {
  private users = 0
  private stdin?: PassThrough
  private readonly context: CommandContext

  constructor(context: CommandContext) {
    this.context = context
  }

  acquire(): void {
    if (this.users++ > 0) return
    const stdin = new PassThrough()
    this.stdin = stdin
    // `read` waits for stdin's end; the argv names what keeps the pod busy in `status`.
    runInPod(this.context, { command: ['sh', '-c', 'read -r _', 'trampoline-builder-session'], stdin }).catch((error: Error) =>
      debug(`builder activity marker: ${error.message}`),
    )
  }

  release(): void {
    if (--this.users > 0) return
    this.users = 0
    this.stdin?.end()
    this.stdin = undefined
  }
}

/** The SSH server: only the builder's client key, only the two Nix programs, each one exec in the daemon container. */
function sshServer(context: CommandContext, keys: ReturnType<typeof builderKeys>, activity: Activity, sessions: Set<ExecSession>): InstanceType<typeof Server> {
  const allowed = utils.parseKey(keys.clientPublicKey)
  if (allowed instanceof Error) throw allowed
  const allowedKey = Array.isArray(allowed) ? allowed[0] : allowed
  const allowedBlob = publicKeyBlob(keys.clientPublicKey)
  return new Server({ hostKeys: [keys.hostPrivateKey] }, (client) => {
    client.on('error', (error: Error) => debug(`builder ssh client: ${error.message}`))
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || !ctx.key.data.equals(allowedBlob)) return ctx.reject(['publickey'])
      if (!ctx.signature) return ctx.accept()
      if (ctx.blob && allowedKey.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept()
      ctx.reject(['publickey'])
    })
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession()
        session.on('exec', (acceptExec, _reject, request) => {
          const stream = acceptExec()
          const argv = remoteArgv(request.command)
          if (!argv) {
            stream.stderr.write(`trampoline builder runs only nix-daemon --stdio and nix-store --serve, not: ${request.command}\n`)
            stream.exit(127)
            stream.end()
            return
          }
          debug(`builder: ${request.command}`)
          let open: ExecSession | undefined
          let clientGone = false
          // The client went away mid-session (nix store ping does): end the exec too.
          stream.on('close', () => {
            clientGone = true
            open?.abort()
          })
          activity.acquire()
          runInDaemon(context, {
            command: argv,
            stdin: stream,
            stdout: stream,
            stderr: stream.stderr,
            onOpen: (opened) => {
              open = opened
              sessions.add(opened)
            },
          })
            .then((code) => stream.exit(code))
            .catch((error: Error) => {
              if (clientGone) debug(`builder session ended by the client: ${error.message}`)
              else warn(`builder session failed: ${error.message}`)
              stream.exit(1)
            })
            .finally(() => {
              if (open) sessions.delete(open)
              activity.release()
              stream.end()
            })
        })
      })
    })
  })
}

export const command: CommandModule<GlobalOptions, BuilderArgs> = {
  command: 'builder',
  describe: 'Serve the pod as a remote builder for this machine\'s Nix (ssh-ng over a local socket, to a trusted nix-daemon in the pod via exec)',
  builder: (yargs) =>
    yargs
      .option('socket', { type: 'string', describe: 'Where to listen (default: builder.sock in the instance\'s state directory)' })
      .option('max-jobs', { type: 'number', default: 2, describe: 'Builds at once, for the machines line' })
      .option('speed-factor', { type: 'number', default: 1, describe: 'Speed factor, for the machines line' })
      .option('features', { type: 'string', describe: 'Supported system features, comma-separated (default: big-parallel)' })
      .option('print', { type: 'boolean', describe: 'Only print the machines line and write the ssh_config block, then exit' })
      .option('connect', { type: 'string', hidden: true, describe: 'ssh ProxyCommand: connect stdio to a serving builder\'s socket' })
      .example('$0 builder', 'serve until Ctrl-C; prints the builders line and the ssh_config block to use')
      .example('NIX_SSHOPTS="-F $(dirname ...)/builder_ssh_config" nix build --builders "$($0 builder --print)" --max-jobs 0 ...', 'one build there, as root (single-user Nix)'),
  handler: async (args) => {
    if (args.connect) return bridge(args.connect)
    const context = commandContext(args)
    const pod = await requireRunningPod(context)
    const system = await podSystem(context, pod)
    if (!system) {
      throw new UserError(`pod ${context.names.pod} did not say which Nix system it builds for`, {
        hint: 'Check the pod: trampoline shell -- nix-instantiate --eval --expr builtins.currentSystem',
        exitCode: ExitCode.failure,
      })
    }
    const { instance } = context.names
    const alias = builderAlias(instance)
    const socket = args.socket ?? defaultSocketPath(context)
    const keys = builderKeys(context.state, instance)
    const files = {
      clientKeyFile: context.state.path(BUILDER_FILES.clientKey),
      knownHostsFile: context.state.path(BUILDER_FILES.knownHosts),
      sshConfig: context.state.path(BUILDER_FILES.sshConfig),
    }
    context.state.write(BUILDER_FILES.knownHosts, `${alias} ${publicKeyIdentity(keys.hostPublicKey)}\n`)
    context.state.write(BUILDER_FILES.sshConfig, renderBuilderSshConfig({ alias, trampoline: selfCommand(), socket, ...files }))
    const features = (args.features ?? 'big-parallel').split(',').map((f) => f.trim()).filter(Boolean)
    const line = machineLine({ alias, system, clientKeyFile: files.clientKeyFile, maxJobs: args.maxJobs ?? 2, speedFactor: args.speedFactor ?? 1, features, hostPublicKey: keys.hostPublicKey })
    const result = { socket, system, machine: line, sshConfig: files.sshConfig }
    if (args.print) {
      printResult(context, result, () => line)
      return
    }

    await claimSocketPath(socket)
    const activity = new Activity(context)
    const sessions = new Set<ExecSession>()
    const server = sshServer(context, keys, activity, sessions)
    await new Promise<void>((listening, fail) => {
      server.once('error', (error: Error) => fail(new UserError(`cannot listen on ${socket}: ${error.message}`, { exitCode: ExitCode.local })))
      // Owner only from the start: a session is a trusted Nix client of the pod, i.e. root on its node.
      const umask = process.umask(0o177)
      server.listen(socket, () => {
        process.umask(umask)
        listening()
      })
    })
    chmodSync(socket, 0o600)
    onInterrupt(
      () =>
        new Promise<void>((stopped) => {
          for (const session of sessions) session.abort()
          server.close(() => stopped())
          rmSync(socket, { force: true })
        }),
    )

    printResult(context, result, () => line)
    info(`builder for instance "${instance}" (${system}) on ${socket}; Ctrl-C stops it. For this machine's nix-daemon (root):`)
    info(`  in /etc/nix/nix.conf (then restart nix-daemon):  builders = ${line}`)
    info('                                                    builders-use-substitutes = true')
    info(`  and in root's ssh config (/root/.ssh/config or /etc/ssh/ssh_config.d/):  Include ${files.sshConfig}`)
    info(`  or for one build as root without a daemon: NIX_SSHOPTS="-F ${files.sshConfig}" nix build --builders '${line}' --max-jobs 0 ...`)
    await new Promise<void>((closed) => server.on('close', () => closed()))
  },
}
