// `trampoline down`: stop the instance by deleting its pod. The store (PVC) and the SSH
// Secret stay, so the next setup comes back with the same store and host key.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { readPod } from '../kube/pods.ts'
import { deleteObject, gracePeriodFor, summarise } from '../kube/objects.ts'
import { waitForPodGone } from '../kube/wait.ts'
import { info } from '../log.ts'

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
    const pod = await readPod(context)
    if (!pod) {
      printResult(context, { instance: names.instance, pod: names.pod, deleted: false }, () => `nothing to do: instance "${names.instance}" has no pod`)
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
    printResult(context, { instance: names.instance, pod: names.pod, deleted }, () => `stopped instance "${names.instance}" (store and keys kept)`)
  },
}
