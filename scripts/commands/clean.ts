// `trampoline clean`: remove the instance entirely: pod, ConfigMap, Secrets, NetworkPolicy
// and (unless --keep-store) the PVC with its Nix store, plus this machine's local state.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { removeInstance } from '../pod/remove.ts'

interface CleanArgs extends GlobalOptions {
  keepStore?: boolean
  timeout: number
}

export const command: CommandModule<GlobalOptions, CleanArgs> = {
  command: 'clean',
  describe: 'Delete the instance and everything it owns, including its Nix store (--keep-store keeps that)',
  builder: (yargs) =>
    yargs
      .option('keep-store', { type: 'boolean', describe: 'Keep the PVC with the Nix store, workspace and home' })
      .option('timeout', { type: 'number', default: 120, describe: 'Seconds to wait for the pod to be gone' }),
  handler: async (args) => {
    const context = commandContext(args)
    const { cluster, names } = context
    const deleted = await removeInstance(context, args.keepStore ?? false, args.timeout)
    // The keys and pins on this machine belong to objects that no longer exist.
    context.state.remove()
    printResult(context, { instance: names.instance, namespace: cluster.namespace, deleted, keptStore: args.keepStore ?? false }, () =>
      deleted.length
        ? `removed instance "${names.instance}": ${deleted.join(', ')}${args.keepStore ? ' (store kept)' : ''}`
        : `nothing to do: instance "${names.instance}" has no objects in namespace "${cluster.namespace}"`,
    )
  },
}
