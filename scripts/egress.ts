// setup --egress: resolve the destinations (and the pod's binary caches) to addresses and
// write the instance's NetworkPolicy; --egress all removes it.
import { lookup } from 'node:dns/promises'
import type { CommandContext } from './context.ts'
import { ExitCode, UserError } from './errors.ts'
import { explainApiError, isNotFound } from './kube/client.ts'
import { buildEgressPolicy, cacheHosts, parseEgress, type EgressTarget } from './manifests/egress.ts'
import { info, warn } from './log.ts'

async function resolveHost(host: string): Promise<string[]> {
  try {
    const found = await lookup(host, { all: true })
    return found.map((a) => `${a.address}/${a.family === 4 ? 32 : 128}`)
  } catch (error) {
    throw new UserError(`--egress: cannot resolve ${host} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, {
      hint: 'Give its address or CIDR instead, or check your DNS.',
      exitCode: ExitCode.usage,
    })
  }
}

export function parseEgressOption(values: string[]): EgressTarget[] | 'all' {
  if (values.length === 1 && values[0] === 'all') return 'all'
  try {
    return parseEgress(values)
  } catch (error) {
    throw new UserError((error as Error).message, { hint: 'Example: --egress api.anthropic.com,10.0.0.0/8 (or --egress all to lift the policy).', exitCode: ExitCode.usage })
  }
}

export async function syncEgressPolicy(context: CommandContext, targets: EgressTarget[] | 'all', substituters: string[]): Promise<void> {
  const { cluster, names, labels } = context
  if (targets === 'all') {
    try {
      await cluster.networking.deleteNamespacedNetworkPolicy({ name: names.networkPolicy, namespace: cluster.namespace })
      info(`removed NetworkPolicy ${names.networkPolicy}: egress is open`)
    } catch (error) {
      if (!isNotFound(error)) throw explainApiError(error, cluster, `delete NetworkPolicy ${names.networkPolicy}`)
    }
    return
  }
  const hosts = [...targets.flatMap((t) => (t.kind === 'host' ? [t.host] : [])), ...cacheHosts(substituters)]
  const cidrs = [...targets.flatMap((t) => (t.kind === 'cidr' ? [t.cidr] : [])), ...(await Promise.all(hosts.map(resolveHost))).flat()]
  const given = targets.map((t) => (t.kind === 'cidr' ? t.cidr : t.host))
  const body = buildEgressPolicy({ names, labels, given, cidrs })
  try {
    const existing = await cluster.networking.readNamespacedNetworkPolicy({ name: names.networkPolicy, namespace: cluster.namespace })
    await cluster.networking.replaceNamespacedNetworkPolicy({
      name: names.networkPolicy,
      namespace: cluster.namespace,
      body: { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
    })
  } catch (error) {
    if (!isNotFound(error)) throw explainApiError(error, cluster, `update NetworkPolicy ${names.networkPolicy}`)
    try {
      await cluster.networking.createNamespacedNetworkPolicy({ namespace: cluster.namespace, body })
    } catch (createError) {
      throw explainApiError(createError, cluster, `create NetworkPolicy ${names.networkPolicy}`)
    }
  }
  info(`egress limited to DNS, ${given.join(', ') || 'no extra destination'} and the binary caches (NetworkPolicy ${names.networkPolicy}; addresses as resolved now, run setup --egress again to refresh)`)
  if (hosts.length) warn('NetworkPolicy only bites where the cluster\'s network plugin enforces it (e.g. Calico, Cilium); check with your cluster admin')
}
