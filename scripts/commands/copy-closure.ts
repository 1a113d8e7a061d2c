// `trampoline copy-closure <paths..>`: store paths and their closures into the pod's
// store, or with --from out of it into the local store.
//
// To the pod: the local `nix copy --to` a root nix-daemon in the nix-daemon container, which
// then signs what arrived (store-import.ts; the user container is not a trusted Nix user,
// so it could not add unsigned paths). From the pod:
// `nix copy` over the exec store (exec-store/shim.ts) with signature checks against the
// instance's key, which the daemon container first adds to the closure's paths that lack
// it, in the same exec that then serves them (results-home.ts, which `build` shares);
// --out-link roots them locally as nix build would.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { requireLocalNix, type StoreProtocol } from '../local-nix.ts'
import { ExitCode, UserError } from '../errors.ts'
import { addRootsInPod, storePathOf } from '../pod/gc-roots.ts'
import { sendClosure } from '../store-import.ts'
import { outLinks } from '../build-args.ts'
import { copyHome, linkHome, planHomeCopy } from '../results-home.ts'

interface CopyArgs extends GlobalOptions {
  paths: string[]
  from?: boolean
  protocol: StoreProtocol
  checkSigs?: boolean
  outLink?: string
}

export const command: CommandModule<GlobalOptions, CopyArgs> = {
  command: 'copy-closure <paths..>',
  describe: 'Copy store paths with their closures to the pod (or --from the pod to the local store)',
  builder: (yargs) =>
    yargs
      .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'Store paths (or installables)' })
      .option('from', { type: 'boolean', describe: 'Copy from the pod into the local store' })
      .option('protocol', { choices: ['ssh-ng', 'ssh'] as const, default: 'ssh-ng' as StoreProtocol, describe: 'Nix remote store protocol for --from' })
      .option('check-sigs', { type: 'boolean', default: true, describe: 'With --from: check the pod\'s signatures (--no-check-sigs to skip)' })
      .option('out-link', { alias: 'o', type: 'string', describe: 'With --from: link (and GC-root) the paths locally as PATH, PATH-1, ... like nix build' })
      .example('$0 copy-closure --from /nix/store/...-hello', 'bring a build result home')
      .example('$0 copy-closure --from /nix/store/...-hello --out-link result', 'bring it home as ./result, kept by the local GC')
      .example('$0 copy-closure $(nix-build -A tool)', 'send a local build to the pod'),
  handler: async (args) => {
    if (args.outLink && !args.from) throw new UserError('--out-link goes with --from (the links point into the local store)', { exitCode: ExitCode.usage })
    const context = commandContext(args)
    await Promise.all([requireLocalNix(), requireRunningPod(context)])
    const started = Date.now()
    if (args.from) {
      const checkSigs = args.checkSigs !== false
      // The pod checks (and signs) while the plan is made here and the copy starts.
      const plan = planHomeCopy(context, { checkSigs })
      const { store, checkedSignatures } = await copyHome(context, args.paths, plan, { protocol: args.protocol, sign: checkSigs })
      const links = args.outLink ? await linkHome(outLinks(args.outLink, args.paths.map((path) => ({ path: storePathOf(path) ?? path })))) : undefined
      const seconds = (Date.now() - started) / 1000
      printResult(context, { direction: 'from', store, paths: args.paths, seconds, checkedSignatures, ...(links ? { links } : {}) }, () =>
        args.quiet ? '' : `copied in ${seconds.toFixed(1)}s${links ? `; ${links.map((l) => `${l.link} -> ${l.path}`).join(', ')}` : ''}`,
      )
      return
    }
    const sent = await sendClosure(context, args.paths, !args.quiet && !args.json, {
      beside: () => addRootsInPod(context, 'copied', args.paths.map((path) => storePathOf(path) ?? '')),
    })
    const seconds = (Date.now() - started) / 1000
    printResult(context, { direction: 'to', store: `pod ${context.names.pod}`, paths: args.paths, closure: sent.closure, sent: sent.sent, bytes: sent.bytes, seconds }, () =>
      args.quiet ? '' : `${sent.sent} of ${sent.closure} path(s) sent in ${seconds.toFixed(1)}s`,
    )
  },
}
