// The instance's netrc Secret: credentials for private binary caches (setup --netrc-file),
// mounted optionally into the nix-daemon container only (volume "netrc"). No
// ownerReference: `down` keeps it, `clean` removes it. Pure.
import type { V1Secret } from '@kubernetes/client-node'
import { COMPONENT_LABEL, type InstanceNames } from '../instance.ts'

export const NETRC_FIELD = 'netrc'
export const NETRC_COMPONENT = 'netrc'

export function buildNetrcSecret(input: { names: InstanceNames; labels: Record<string, string>; netrc: string }): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: input.names.netrcSecret, labels: { ...input.labels, [COMPONENT_LABEL]: NETRC_COMPONENT } },
    type: 'Opaque',
    data: { [NETRC_FIELD]: Buffer.from(input.netrc, 'utf8').toString('base64') },
  }
}

/** netrc text holds at least one `machine` (or `default`) entry; anything else is likely the wrong file. */
export function looksLikeNetrc(text: string): boolean {
  return /(^|\s)(machine\s+\S+|default)(\s|$)/.test(text)
}
