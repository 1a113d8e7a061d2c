// `trampoline clean`: remove the instance entirely: pod, ConfigMap, Secrets, NetworkPolicy
// and (unless --keep-store) the PVC with its Nix store, plus this machine's local state.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { instanceSelector } from '../instance.ts'
import { deleteObject, describeObject, gracePeriodFor, listAllLabelled, type LabelledObject } from '../pod/objects.ts'
import { waitForPodGone } from '../pod/wait.ts'
import { info } from '../log.ts'

interface CleanArgs extends GlobalOptions {
  keepStore?: boolean
  timeout: number
}

/** What clean removes, pod first (so nothing restarts on a missing ConfigMap meanwhile). */
export function cleanPlan(objects: LabelledObject[], keepStore: boolean): LabelledObject[] {
  const order = ['Pod', 'NetworkPolicy', 'ConfigMap', 'Secret', 'PersistentVolumeClaim']
  return objects
    .filter((o) => !(keepStore && o.kind === 'PersistentVolumeClaim'))
    .sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind) || a.name.localeCompare(b.name))
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
    const plan = cleanPlan(await listAllLabelled(cluster, instanceSelector(names.instance)), args.keepStore ?? false)
    const deleted: string[] = []
    const pods: LabelledObject[] = []
    for (const object of plan) {
      if (await deleteObject(cluster, object, { gracePeriodSeconds: gracePeriodFor(object) })) {
        deleted.push(describeObject(object))
        if (object.kind === 'Pod') pods.push(object)
        info(`deleted ${describeObject(object)}`)
      }
    }
    for (const pod of pods) {
      if (!(await waitForPodGone(cluster, pod.name, args.timeout, pod.uid))) {
        throw new UserError(`pod ${pod.name} is still terminating after ${args.timeout}s`, {
          hint: 'It will go away by itself; check with: trampoline status',
          exitCode: ExitCode.failure,
        })
      }
    }
    // The keys and pins on this machine belong to objects that no longer exist.
    context.state.remove()
    printResult(context, { instance: names.instance, namespace: cluster.namespace, deleted, keptStore: args.keepStore ?? false }, () =>
      deleted.length
        ? `removed instance "${names.instance}": ${deleted.join(', ')}${args.keepStore ? ' (store kept)' : ''}`
        : `nothing to do: instance "${names.instance}" has no objects in namespace "${cluster.namespace}"`,
    )
  },
}
