// `trampoline gc`: sweep what crashed clients and ended agent sessions leave behind in the
// namespace: pods past their `trampoline.dev/expires-at`, and labelled objects whose
// instance has no pod. Stores (PVC, SSH and agent Secrets) stay unless --include-stores.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { collectOrphans } from '../pod/orphans.ts'

interface GcArgs extends GlobalOptions {
  dryRun?: boolean
  includeStores?: boolean
}

export const command: CommandModule<GlobalOptions, GcArgs> = {
  command: 'gc',
  describe: 'Remove expired session pods and objects left without a pod (stores kept unless --include-stores)',
  builder: (yargs) =>
    yargs
      .option('dry-run', { type: 'boolean', describe: 'Only list what would be removed' })
      .option('include-stores', { type: 'boolean', describe: 'Also remove the PVCs and SSH/agent Secrets of instances without a pod' }),
  handler: async (args) => {
    const context = commandContext({ ...args, name: args.name ?? 'default' })
    const { cluster } = context
    const removed = await collectOrphans(cluster, { dryRun: args.dryRun ?? false, includeStores: args.includeStores ?? false })
    printResult(context, { namespace: cluster.namespace, dryRun: args.dryRun ?? false, removed }, () =>
      removed.length
        ? removed.map((r) => `${args.dryRun ? 'would remove' : 'removed'} ${r.object} (${r.why})`).join('\n')
        : `nothing to collect in namespace "${cluster.namespace}"`,
    )
  },
}
