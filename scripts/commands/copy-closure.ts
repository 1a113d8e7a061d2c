// `trampoline copy-closure <paths..>`: store paths and their closures into the pod's
// store, or with --from out of it into the local store.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { requireRunningPod } from '../kube/pods.ts'
import { writeSshFiles } from '../ssh/files.ts'
import { nixCopyArgs, podStoreUrl, requireLocalNix, runNix, type StoreProtocol } from '../local-nix.ts'
import { info } from '../log.ts'
import { addRootsInPod, storePathOf } from '../gc-roots.ts'

interface CopyArgs extends GlobalOptions {
  paths: string[]
  from?: boolean
  protocol: StoreProtocol
}

export const command: CommandModule<GlobalOptions, CopyArgs> = {
  command: 'copy-closure <paths..>',
  describe: 'Copy store paths with their closures to the pod (or --from the pod to the local store)',
  builder: (yargs) =>
    yargs
      .positional('paths', { type: 'string', array: true, demandOption: true, describe: 'Store paths (or installables for nix copy)' })
      .option('from', { type: 'boolean', describe: 'Copy from the pod into the local store' })
      .option('protocol', { choices: ['ssh-ng', 'ssh'] as const, default: 'ssh-ng' as StoreProtocol, describe: 'Nix remote store protocol' })
      .example('$0 copy-closure --from /nix/store/...-hello', 'bring a build result home')
      .example('$0 copy-closure $(nix-build -A tool)', 'send a local build to the pod'),
  handler: async (args) => {
    const context = commandContext(args)
    await requireLocalNix()
    await requireRunningPod(context)
    const files = writeSshFiles(context, args)
    const direction = args.from ? 'from' : 'to'
    const store = podStoreUrl(files, args.protocol)
    info(`copying ${args.paths.length} path(s) ${direction} ${store}`)
    const started = Date.now()
    await runNix(nixCopyArgs(direction, store, args.paths), files)
    const seconds = (Date.now() - started) / 1000
    if (!args.from) await addRootsInPod(context, 'copied', args.paths.map((path) => storePathOf(path) ?? ''))
    printResult(context, { direction, store, paths: args.paths, seconds }, () => (args.quiet ? '' : `copied in ${seconds.toFixed(1)}s`))
  },
}
