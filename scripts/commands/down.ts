// `trampoline down`: stop the instance by deleting its pod and its build-farm workers. The
// store (PVC), the SSH Secret and the farm Secret (keys, worker count) stay, so the next
// setup comes back with the same store, host keys and workers.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { stopInstance } from '../pod/remove.ts'

interface DownArgs extends GlobalOptions {
  timeout: number
}

export const command: CommandModule<GlobalOptions, DownArgs> = {
  command: 'down',
  describe: 'Stop the instance: delete its pod, keep its store and keys (setup brings it back)',
  builder: (yargs) =>
    yargs.option('timeout', { type: 'number', default: 120, describe: 'Seconds to wait for the pod to be gone' }),
  handler: async (args) => {
    const context = commandContext(args)
    const { names } = context
    const { deleted, workersDeleted, hadPod } = await stopInstance(context, args.timeout)
    if (!hadPod) {
      printResult(context, { instance: names.instance, pod: names.pod, deleted: false, workersDeleted }, () =>
        workersDeleted.length ? `stopped ${workersDeleted.length} worker(s) of instance "${names.instance}"; it has no pod` : `nothing to do: instance "${names.instance}" has no pod`,
      )
      return
    }
    printResult(context, { instance: names.instance, pod: names.pod, deleted, workersDeleted }, () =>
      `stopped instance "${names.instance}"${workersDeleted.length ? ` and ${workersDeleted.length} worker(s)` : ''} (store and keys kept)`,
    )
  },
}
