// What the mux client needs to find its helper (cluster identity, instance, state dir),
// resolved from the global options the way context.ts and kube/client.ts resolve them, but
// without importing either: in the bundle they share a chunk with @kubernetes/client-node,
// whose mere loading (node:http pulling in Node's undici, a 3.5 MB chunk to read) costs
// more than a whole command through the helper. Differences cannot give a wrong answer:
// the helper computes the key again with the real modules and refuses another one.
import type { GlobalOptions } from '../context.ts'
import { findRepoRoot } from '../git.ts'
import type { Cluster } from '../kube/client.ts'
import { kubeconfigSources, readKubeconfigs, selectContext } from '../kube/kubeconfig.ts'
import { defaultInstanceName, namesFor, validateInstanceName, type InstanceNames } from '../instance.ts'
import { InstanceState, instanceStateDir } from '../state.ts'

/** The parts of a CommandContext the mux client reads (a CommandContext is one). */
export interface MuxTarget {
  cluster: Pick<Cluster, 'selection' | 'server' | 'namespace' | 'context' | 'kubeconfigFiles'>
  names: Pick<InstanceNames, 'instance' | 'pod'>
  state: InstanceState
}

/** Undefined whenever anything is unusual (no kubeconfig, a bad name): the direct path then says what. */
export function muxTarget(options: GlobalOptions, env = process.env): MuxTarget | undefined {
  try {
    const instance = options.name ?? env.TRAMPOLINE_NAME ?? defaultInstanceName(findRepoRoot())
    if (validateInstanceName(instance)) return undefined
    const merged = readKubeconfigs(kubeconfigSources(options.kubeconfig, env))
    if (!merged) return undefined
    const selection = selectContext(merged, options.context)
    const contextNamespace = typeof selection.context.namespace === 'string' && selection.context.namespace !== '' ? selection.context.namespace : undefined
    const namespace = options.namespace ?? (env.TRAMPOLINE_NAMESPACE || undefined) ?? contextNamespace ?? 'default'
    return {
      cluster: {
        selection,
        server: String(selection.cluster.server).replace(/\/$/, ''),
        namespace,
        context: selection.contextName,
        kubeconfigFiles: merged.files,
      },
      names: namesFor(instance),
      state: new InstanceState(instanceStateDir(selection.contextName, namespace, instance, env)),
    }
  } catch {
    return undefined
  }
}
