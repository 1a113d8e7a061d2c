import { describe, expect, it } from 'vitest'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy'
import { labelsFor, namesFor } from '../instance.ts'
import { buildEgressPolicy, cacheHosts, parseEgress } from './egress.ts'

describe('egress destinations', () => {
  it('takes hosts, addresses and CIDRs, comma-separated or repeated', () => {
    expect(parseEgress(['api.anthropic.com,10.0.0.0/8', '192.0.2.7', '2001:db8::/32'])).toEqual([
      { kind: 'host', host: 'api.anthropic.com' },
      { kind: 'cidr', cidr: '10.0.0.0/8' },
      { kind: 'cidr', cidr: '192.0.2.7/32' },
      { kind: 'cidr', cidr: '2001:db8::/32' },
    ])
  })

  it('refuses what is neither', () => {
    expect(() => parseEgress(['10.0.0.0/33'])).toThrow(/not an address or CIDR/)
    expect(() => parseEgress(['https://example.org'])).toThrow(/neither a host name/)
    expect(() => parseEgress(['example.org/8'])).toThrow(/neither a host name/)
  })

  it('names the hosts of http(s) caches only', () => {
    expect(cacheHosts(['https://cache.nixos.org/', 'http://10.213.0.1:8179/good', 's3://bucket?region=x'])).toEqual(['cache.nixos.org', '10.213.0.1'])
  })
})

describe('egress NetworkPolicy', () => {
  const policy = buildEgressPolicy({
    names: namesFor('web'),
    labels: labelsFor('web', 'me'),
    given: ['api.anthropic.com'],
    cidrs: ['160.79.104.10/32', '10.0.0.0/8', '160.79.104.10/32'],
  })

  it('is a valid NetworkPolicy for the instance\'s pod only', () => {
    new NetworkPolicy(policy as never).validate()
    expect(policy.metadata?.name).toBe('trampoline-web-egress')
    expect(policy.spec?.podSelector?.matchLabels).toEqual({ 'app.kubernetes.io/name': 'trampoline', 'app.kubernetes.io/instance': 'web' })
    expect(policy.metadata?.labels?.['app.kubernetes.io/instance']).toBe('web')
  })

  it('allows DNS, exactly the listed addresses and the instance\'s own farm workers\' sshd, nothing else', () => {
    expect(policy.spec?.policyTypes).toEqual(['Egress'])
    expect(policy.spec?.egress).toEqual([
      { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
      { to: [{ ipBlock: { cidr: '10.0.0.0/8' } }, { ipBlock: { cidr: '160.79.104.10/32' } }] },
      {
        to: [{ podSelector: { matchLabels: { 'app.kubernetes.io/instance': 'web', 'app.kubernetes.io/component': 'worker' } } }],
        ports: [{ protocol: 'TCP', port: 2222 }],
      },
    ])
    expect(policy.spec?.ingress).toBeUndefined()
  })
})
