// `trampoline down`: stop the instance by deleting its pod and its build-farm workers. The
// store (PVC), the SSH Secret and the farm Secret (keys, worker count) stay, so the next
// setup comes back with the same store, host keys and workers.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { readPod } from '../pod/pods.ts'
import { deleteObject, gracePeriodFor, summarise } from '../pod/objects.ts'
import { waitForPodGone } from '../pod/wait.ts'
import { info } from '../log.ts'
import { deleteWorkers, listWorkers } from '../farm/farm.ts'

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
    const { cluster, names } = context
    // Workers first (they would go with the pod, through its ownerReference, but only as
    // fast as the garbage collector; down waits until they are gone).
    const workers = await listWorkers(context)
    if (workers.length) info(`deleting ${workers.length} worker pod${workers.length === 1 ? '' : 's'}`)
    const workersDeleted = await deleteWorkers(context, workers, args.timeout)
    const pod = await readPod(context)
    if (!pod) {
      printResult(context, { instance: names.instance, pod: names.pod, deleted: false, workersDeleted }, () =>
        workersDeleted.length ? `stopped ${workersDeleted.length} worker(s) of instance "${names.instance}"; it has no pod` : `nothing to do: instance "${names.instance}" has no pod`,
      )
      return
    }
    const object = summarise('Pod', pod.metadata, cluster.namespace, pod.status?.phase)
    info(`deleting pod ${names.pod}${object.phase === 'Running' ? '' : ` (${object.phase ?? 'not started'}: at once)`}`)
    const deleted = await deleteObject(cluster, object, { gracePeriodSeconds: gracePeriodFor(object) })
    if (deleted && !(await waitForPodGone(cluster, names.pod, args.timeout, object.uid))) {
      throw new UserError(`pod ${names.pod} is still terminating after ${args.timeout}s`, {
        hint: 'It will go away by itself; a node that is down can hold it for a while. Check with: trampoline status',
        exitCode: ExitCode.failure,
      })
    }
    printResult(context, { instance: names.instance, pod: names.pod, deleted, workersDeleted }, () =>
      `stopped instance "${names.instance}"${workersDeleted.length ? ` and ${workersDeleted.length} worker(s)` : ''} (store and keys kept)`,
    )
  },
}
