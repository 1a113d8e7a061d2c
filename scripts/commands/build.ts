// `trampoline build`: nix build in the pod, and the results brought home as nix build
// leaves them. Logs stream live to stderr, the result store paths go to stdout, every
// result is GC-rooted in the pod, and nix's exit code is ours.
//
// Where it evaluates: in the pod, in the pushed tree (the default: it warns when that is
// not the local tree), or with --eval local on this machine, the pod building over ssh-ng
// what the laptop evaluated (no push needed). Then, when this machine has Nix, the results
// come home with signature checks (results-home.ts, shared with copy-closure --from) and
// get ./result links that are local GC roots; --no-link copies without links,
// --remote-only leaves them in the pod.
import type { CommandModule } from 'yargs'
import { Writable } from 'node:stream'
import type { V1Pod } from '@kubernetes/client-node'
import { commandContext, printResult, type CommandContext, type GlobalOptions } from '../context.ts'
import { ExitCode, RemoteExit, UserError } from '../errors.ts'
import { localTrees } from '../git.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { info, warn } from '../log.ts'
import {
  gcRootName,
  localEvalArgv,
  nixBuildArgv,
  outLinks,
  parseBuildResults,
  podRootArgv,
  podRootLinks,
  resultPaths,
  type BuildRequest,
  type BuildResult,
  type OutLink,
} from '../build-args.ts'
import { hasLocalNix, localSystem, podStoreUrl, requireLocalNix, runNixCapture } from '../local-nix.ts'
import { podSystem } from '../pod/system.ts'
import { podTree } from '../pod/push.ts'
import { captureInPod, runInPod } from '../pod/run.ts'
import { copyHome, linkHome, planHomeCopy, type HomeCopyPlan } from '../results-home.ts'
import { writeSshFiles } from '../ssh/files.ts'
import { GC_ROOTS_DIR, WORKSPACE_SRC } from '../pod/contract.ts'

export type EvalWhere = 'pod' | 'local'

interface BuildArgs extends GlobalOptions {
  file?: string
  installables?: string[]
  outLink?: string
  /** false with --no-link. */
  link?: boolean
  remoteOnly?: boolean
  eval?: EvalWhere
  checkSigs?: boolean
  '--'?: string[]
}

/** nix build --json prints one line; a cap keeps a misbehaving build from filling memory. */
const MAX_STDOUT = 16 * 1024 * 1024
/** Local state file: this machine was told once that it has no Nix to bring results home with. */
export const NO_LOCAL_NIX_WARNED_FILE = 'warned-no-local-nix'

export function buildRequest(args: Pick<BuildArgs, 'file' | 'installables' | '--'>): BuildRequest {
  return { file: args.file, installables: (args.installables ?? []).map(String), passthrough: (args['--'] ?? []).map(String) }
}

/** What happens to the results here: nothing (left in the pod), or copied home with or without a link. */
export type HomeMode = { kind: 'remote-only'; reason: 'asked' | 'no-local-nix' } | { kind: 'copy'; link?: string }

/** Pure: the options and whether this machine has Nix decide where results end up. */
export function homeMode(args: Pick<BuildArgs, 'outLink' | 'link' | 'remoteOnly'>, localNix: boolean): HomeMode {
  if (args.remoteOnly) return { kind: 'remote-only', reason: 'asked' }
  if (!localNix) return { kind: 'remote-only', reason: 'no-local-nix' }
  if (args.link === false) return { kind: 'copy' }
  return { kind: 'copy', link: args.outLink ?? 'result' }
}

/** Contradicting options are usage errors, found before anything runs. */
export function checkBuildOptions(args: Pick<BuildArgs, 'outLink' | 'link' | 'remoteOnly' | 'checkSigs'>): void {
  const usage = (message: string) => new UserError(message, { exitCode: ExitCode.usage })
  if (args.link === false && args.outLink !== undefined) throw usage('--no-link and --out-link contradict each other')
  if (args.remoteOnly && (args.outLink !== undefined || args.link === false)) throw usage('--remote-only leaves the results in the pod: it takes no --out-link or --no-link')
  if (args.remoteOnly && args.checkSigs === false) throw usage('--no-check-sigs is about copying results home, which --remote-only does not do')
}

/** Say so when the pod's tree is neither local HEAD nor the work tree: the build will not see it. */
function warnIfStale(pushed: string, local: string[]): void {
  if (local.length > 0 && !local.includes(pushed)) {
    warn(`the pod builds tree ${pushed.slice(0, 12)} (the last push); your local tree differs. Run trampoline push-tarball [--worktree] to build your changes (or build --eval local).`)
  }
}

/** Once per instance: a machine without Nix keeps today's behaviour, and is told why once. */
function warnNoLocalNixOnce(context: CommandContext): void {
  if (context.state.has(NO_LOCAL_NIX_WARNED_FILE)) return
  warn('there is no Nix on this machine (nix and nix-store not on PATH), so the results stay in the pod (as with --remote-only); ' +
    'with Nix installed, build copies them home as ./result links. This warning is shown once.')
  context.state.write(NO_LOCAL_NIX_WARNED_FILE, `${new Date().toISOString()}\n`)
}

/** The untrusted-key error, with the way out that only build has. */
async function planCopy(context: CommandContext, checkSigs: boolean): Promise<HomeCopyPlan> {
  try {
    return await planHomeCopy(context, { checkSigs })
  } catch (error) {
    if (!(error instanceof UserError)) throw error
    throw new UserError(`${error.message} (checked before building)`, {
      hint: `${(error.hint ?? '').replace(/\.$/, '')}, or --remote-only to leave the results in the pod.`,
      exitCode: error.exitCode,
      cause: error,
    })
  }
}

interface BuildRun {
  exitCode: number
  results: BuildResult[]
}

/** Evaluate and build in the pod, in the pushed tree; nix itself roots the results there. */
async function buildInPod(context: CommandContext, request: BuildRequest): Promise<BuildRun> {
  const [pushed, local] = await Promise.all([podTree(context), context.repoRoot ? localTrees(context.repoRoot) : []])
  if (!pushed) {
    throw new UserError(`nothing has been pushed to pod ${context.names.pod} yet, so there is nothing to build`, {
      hint: 'Run: trampoline push-tarball  (or push-tarball --worktree for uncommitted changes), or evaluate here: trampoline build --eval local',
      exitCode: ExitCode.notFound,
    })
  }
  warnIfStale(pushed, local)

  const chunks: Buffer[] = []
  let size = 0
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if ((size += chunk.length) <= MAX_STDOUT) chunks.push(chunk)
      callback()
    },
  })
  const exitCode = await runInPod(context, {
    // exec has no working directory: a tiny sh wrapper cds first.
    command: ['sh', '-c', 'cd "$1" && shift && exec "$@"', 'trampoline-build', WORKSPACE_SRC, ...nixBuildArgv(request)],
    stdout,
    stderr: process.stderr,
  })
  return { exitCode, results: exitCode === 0 ? parseBuildResults(Buffer.concat(chunks).toString('utf8')) : [] }
}

/**
 * Evaluate here, build in the pod: the local nix sends the derivations over ssh-ng (the
 * pod's untrusted user may add .drv files and sources) and the pod's daemon builds them.
 * A remote store gets no links from nix, so the results are rooted in the pod afterwards,
 * under the names a pod-side build would have given them.
 */
async function buildLocally(context: CommandContext, args: BuildArgs, request: BuildRequest, pod: V1Pod): Promise<BuildRun> {
  const files = writeSshFiles(context, args)
  const [remote, here] = await Promise.all([podSystem(context, pod), localSystem()])
  const system = remote && remote !== here ? remote : undefined
  if (system) info(`evaluating for the pod's system ${system} (this machine is ${here ?? 'unknown'})`)
  const { exitCode, stdout } = await runNixCapture(localEvalArgv({ ...request, store: podStoreUrl(files), system }), files)
  const results = exitCode === 0 ? parseBuildResults(stdout) : []
  const links = podRootLinks(request, results)
  if (links.length) {
    const rooted = await captureInPod(context, podRootArgv(links))
    if (rooted.exitCode !== 0) warn(`could not GC-root the results in the pod (maintenance may collect them there): ${rooted.stderr.trim()}`)
  }
  return { exitCode, results }
}

export const command: CommandModule<GlobalOptions, BuildArgs> = {
  command: 'build [installables..]',
  describe: 'nix build in the pod, in the pushed tree; prints result paths and keeps them GC-rooted',
  builder: (yargs) =>
    yargs
      .positional('installables', { type: 'string', array: true, describe: 'Flake outputs (default: ., for the pod\'s system), or attributes with -f' })
      .option('file', { alias: 'f', type: 'string', describe: 'Build from a Nix file (relative to the pushed tree; with --eval local, to the current directory) instead of a flake' })
      .option('eval', { choices: ['pod', 'local'] as const, default: 'pod' as EvalWhere, describe: 'Where to evaluate: in the pod, in the pushed tree; or here (no push needed), building in the pod over ssh-ng' })
      .option('out-link', { alias: 'o', type: 'string', describe: 'Local link name for the results (default: result, as nix build: result-dev, result-1...)' })
      .option('link', { type: 'boolean', describe: 'Link the results locally (--no-link: copy them home without links)' })
      .option('remote-only', { type: 'boolean', describe: 'Leave the results in the pod (no local copy, no links)' })
      .option('check-sigs', { type: 'boolean', default: true, describe: 'Check the pod\'s signatures when copying results home (--no-check-sigs to skip)' })
      // Everything after `--` goes to nix build untouched.
      .parserConfiguration({ 'populate--': true })
      .example('$0 build', 'build the flake\'s default package in the pod, then ./result here')
      .example('$0 build .#tests -- -L', 'build with full logs')
      .example('$0 build -f default.nix hello --out-link hello', 'an attribute of a Nix file, linked as ./hello')
      .example('$0 build --eval local -f release.nix', 'evaluate here, build in the pod, ./result here')
      .example('$0 build --remote-only', 'leave the results in the pod'),
  handler: async (args) => {
    checkBuildOptions(args)
    const context = commandContext(args)
    const request = buildRequest(args)
    const evalLocal = args.eval === 'local'
    const pod = await requireRunningPod(context)
    if (evalLocal) await requireLocalNix()
    const home = homeMode(args, evalLocal || (!args.remoteOnly && (await hasLocalNix())))
    if (home.kind === 'remote-only' && home.reason === 'no-local-nix') warnNoLocalNixOnce(context)
    // Before building: a local Nix that would refuse the results is better known now.
    const plan = home.kind === 'copy' ? await planCopy(context, args.checkSigs !== false) : undefined

    const { exitCode, results } = evalLocal ? await buildLocally(context, args, request, pod) : await buildInPod(context, request)
    const outputs = resultPaths(results)
    if (exitCode !== 0) {
      printResult(context, { exitCode, outputs, eval: args.eval ?? 'pod', copied: false, links: [] }, () => '')
      throw new RemoteExit(exitCode)
    }
    if (outputs.length) info(`GC roots in the pod: ${GC_ROOTS_DIR}/${gcRootName(request)}*`)

    let links: OutLink[] = []
    let copied = false
    const report = () => printResult(context, { exitCode, outputs, eval: args.eval ?? 'pod', copied, links }, () => outputs.join('\n'))
    try {
      if (plan && outputs.length) {
        await copyHome(context, outputs, plan)
        copied = true
        if (home.kind === 'copy' && home.link) {
          links = await linkHome(outLinks(home.link, results))
          for (const { link, path } of links) info(`${link} -> ${path}`)
        }
      }
    } catch (error) {
      // The build itself succeeded: its results (rooted in the pod) are still worth printing.
      report()
      throw error
    }
    report()
  },
}
