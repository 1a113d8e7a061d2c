// The instance's egress NetworkPolicy (setup --egress): the pod may reach DNS, the listed
// destinations and its binary caches, nothing else. NetworkPolicy speaks addresses, not
// names, so host names are resolved by the CLI when setup runs. It bites only where the
// cluster's CNI enforces NetworkPolicy. Pure.
import { isIP } from 'node:net'
import type { V1NetworkPolicy } from '@kubernetes/client-node'
import { APP_LABEL, COMPONENT_LABEL, INSTANCE_LABEL, type InstanceNames } from '../instance.ts'
import { WORKER_COMPONENT, WORKER_SSH_PORT } from './worker.ts'

export const EGRESS_COMPONENT = 'egress'
/** The destinations as the user gave them, so status and a later setup can show them. */
export const EGRESS_ANNOTATION = 'trampoline.dev/egress'

export type EgressTarget = { kind: 'cidr'; cidr: string } | { kind: 'host'; host: string }

/** "10.0.0.0/8", "1.2.3.4", "2001:db8::/32", "api.anthropic.com" (a comma-separated list). */
export function parseEgress(values: string[]): EgressTarget[] {
  const targets: EgressTarget[] = []
  for (const raw of values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)) {
    const [address, bits, extra] = raw.split('/')
    if (isIP(address)) {
      const max = isIP(address) === 4 ? 32 : 128
      const prefix = bits === undefined ? max : Number(bits)
      if (extra !== undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max || (bits !== undefined && !/^\d+$/.test(bits))) {
        throw new Error(`--egress "${raw}" is not an address or CIDR`)
      }
      targets.push({ kind: 'cidr', cidr: `${address}/${prefix}` })
    } else if (/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(raw) && bits === undefined) {
      targets.push({ kind: 'host', host: raw.toLowerCase() })
    } else {
      throw new Error(`--egress "${raw}" is neither a host name nor an address/CIDR`)
    }
  }
  return targets
}

/** The host of each http(s) cache URL (other schemes, e.g. s3://, name no host we can resolve). */
export function cacheHosts(substituters: string[]): string[] {
  const hosts = new Set<string>()
  for (const url of substituters) {
    try {
      const parsed = new URL(url)
      if (parsed.protocol === 'http:' || parsed.protocol === 'https:') hosts.add(parsed.hostname.replace(/^\[|\]$/g, ''))
    } catch {
      // Not a URL with a host: nothing to allow.
    }
  }
  return [...hosts]
}

export interface EgressPolicyInput {
  names: InstanceNames
  labels: Record<string, string>
  /** The destinations as given (for the annotation). */
  given: string[]
  /** Every allowed address as a CIDR (resolved hosts included), deduplicated by the caller or here. */
  cidrs: string[]
}

export function buildEgressPolicy(input: EgressPolicyInput): V1NetworkPolicy {
  const cidrs = [...new Set(input.cidrs)].sort()
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: input.names.networkPolicy,
      labels: { ...input.labels, [COMPONENT_LABEL]: EGRESS_COMPONENT },
      annotations: { [EGRESS_ANNOTATION]: input.given.join(',') },
    },
    spec: {
      podSelector: { matchLabels: { [APP_LABEL]: input.labels[APP_LABEL], [INSTANCE_LABEL]: input.labels[INSTANCE_LABEL] } },
      policyTypes: ['Egress'],
      egress: [
        // Name resolution, wherever the cluster's resolver is.
        { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
        ...(cidrs.length ? [{ to: cidrs.map((cidr) => ({ ipBlock: { cidr } })) }] : []),
        // The main daemon's ssh-ng to the instance's own build-farm workers (setup --workers).
        {
          to: [{ podSelector: { matchLabels: { [INSTANCE_LABEL]: input.labels[INSTANCE_LABEL], [COMPONENT_LABEL]: WORKER_COMPONENT } } }],
          ports: [{ protocol: 'TCP', port: WORKER_SSH_PORT }],
        },
      ],
    },
  }
}
