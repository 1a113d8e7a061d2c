// `trampoline copy-closure <paths..>`: store paths and their closures into the pod's
// store, or with --from out of it into the local store.
//
// To the pod: exported locally and imported by root in the nix-daemon container (the user
// container is not a trusted Nix user, so it could not add unsigned paths). From the pod:
// `nix copy` over ssh-ng with signature checks against the instance's key, which the
// daemon container first adds to the closure's paths that lack it.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { requireRunningPod } from '../kube/pods.ts'
import { writeSshFiles } from '../ssh/files.ts'
import { nixCopyFromArgs, podStoreUrl, requireLocalNix, runNix, type StoreProtocol } from '../local-nix.ts'
import { info } from '../log.ts'
import { addRootsInPod, storePathOf } from '../gc-roots.ts'
import { sendClosure } from '../store-import.ts'
import { signClosuresInPod } from '../daemon.ts'
import { podPublicKey } from '../signing/key.ts'
import { planSigCheck, readLocalSigConfig, sigCheckArgs } from '../signing/local-trust.ts'

interface CopyArgs extends GlobalOptions {
  paths: string[]
  from?: boolean
  protocol: StoreProtocol
  checkSigs?: boolean
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
      .example('$0 copy-closure --from /nix/store/...-hello', 'bring a build result home')
      .example('$0 copy-closure $(nix-build -A tool)', 'send a local build to the pod'),
  handler: async (args) => {
    const context = commandContext(args)
    await requireLocalNix()
    await requireRunningPod(context)
    const started = Date.now()
    if (args.from) {
      const files = writeSshFiles(context, args)
      const store = podStoreUrl(files, args.protocol)
      const publicKey = await podPublicKey(context)
      const plan = planSigCheck({ publicKey, noCheckSigs: args.checkSigs === false, local: publicKey ? await readLocalSigConfig() : undefined, isRoot: process.getuid?.() === 0 })
      const sigArgs = sigCheckArgs(plan, context.names.instance)
      // Paths the pod imported or its image shipped carry no signature of ours yet.
      if (plan.kind !== 'off') await signClosuresInPod(context, args.paths)
      info(`copying ${args.paths.length} path(s) from ${store}${plan.kind === 'off' ? ' (signatures not checked)' : ''}`)
      await runNix(nixCopyFromArgs(store, args.paths, sigArgs), files)
      const seconds = (Date.now() - started) / 1000
      printResult(context, { direction: 'from', store, paths: args.paths, seconds, checkedSignatures: plan.kind !== 'off' }, () =>
        args.quiet ? '' : `copied in ${seconds.toFixed(1)}s`,
      )
      return
    }
    const sent = await sendClosure(context, args.paths, !args.quiet && !args.json)
    await addRootsInPod(context, 'copied', args.paths.map((path) => storePathOf(path) ?? ''))
    const seconds = (Date.now() - started) / 1000
    printResult(context, { direction: 'to', store: `pod ${context.names.pod}`, paths: args.paths, closure: sent.closure, sent: sent.sent, bytes: sent.bytes, seconds }, () =>
      args.quiet ? '' : `${sent.sent} of ${sent.closure} path(s) sent in ${seconds.toFixed(1)}s`,
    )
  },
}
