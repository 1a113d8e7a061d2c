import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { formatRows, formatWorkers, idleNow, parseDf, parseMonitor, phaseOf, splitProbe, statusRows } from './status.ts'

const labels = (instance: string) => ({
  'app.kubernetes.io/name': 'trampoline',
  'app.kubernetes.io/instance': instance,
  'app.kubernetes.io/managed-by': 'trampoline',
  'trampoline.dev/owner': 'me.laptop',
})

function pod(instance: string, status: V1Pod['status'], created = '2026-11-22T08:00:00Z'): V1Pod {
  return {
    metadata: { name: `trampoline-${instance}`, namespace: 'default', labels: labels(instance), creationTimestamp: new Date(created) },
    spec: { containers: [], nodeName: 'node1' },
    status,
  }
}

function pvc(instance: string, storage = '20Gi'): V1PersistentVolumeClaim {
  return {
    metadata: { name: `trampoline-${instance}`, namespace: 'default', labels: labels(instance) },
    spec: { resources: { requests: { storage } } },
    status: { phase: 'Bound', capacity: { storage } },
  }
}

const ready = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }

describe('phaseOf', () => {
  it('tells running from starting by the Ready condition', () => {
    expect(phaseOf(pod('a', ready))).toBe('Running')
    expect(phaseOf(pod('a', { phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] }))).toBe('Starting')
    expect(phaseOf(pod('a', { phase: 'Pending' }))).toBe('Pending')
  })

  it('shows why an idle pod stopped', () => {
    const stopped = pod('a', {
      phase: 'Succeeded',
      containerStatuses: [{ name: 'user', image: 'x', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, message: 'idle: no activity for 1800s (timeout 1800s)\n' } } }],
    })
    expect(phaseOf(stopped)).toBe('Stopped (idle: no activity for 1800s (timeout 1800s))')
    expect(phaseOf(pod('a', { phase: 'Succeeded' }))).toBe('Stopped')
  })

  it('is Down without a pod and Failed/Terminating as such', () => {
    expect(phaseOf(undefined)).toBe('Down')
    expect(phaseOf(pod('a', { phase: 'Failed' }))).toBe('Failed')
    const leaving = pod('a', ready)
    leaving.metadata!.deletionTimestamp = new Date()
    expect(phaseOf(leaving)).toBe('Terminating')
  })
})

describe('monitor.json', () => {
  const json = '{"idle":false,"idleSeconds":120,"timeout":1800,"active":[],"lastPush":null,"checkedAt":1795000000}'

  it('reads what shutdown-monitor.sh writes', () => {
    expect(parseMonitor(json)).toEqual({ idleSeconds: 120, timeoutSeconds: 1800, activity: [], agents: undefined, checkedAt: 1795000000 })
    expect(parseMonitor('{"idleSeconds":0,"timeout":0,"active":["ssh 41: sshd: trampoline@notty"],"checkedAt":1}').activity).toEqual(['ssh 41: sshd: trampoline@notty'])
  })

  it('counts the agent sessions the monitor saw', () => {
    const busy = '{"idle":false,"idleSeconds":0,"timeout":1800,"active":["exec 12: /usr/local/bin/claude --continue","ssh 40: sshd: trampoline@pts/0"],"agents":2,"lastPush":null,"checkedAt":5}'
    expect(parseMonitor(busy)).toMatchObject({ agents: 2, activity: ['exec 12: /usr/local/bin/claude --continue', 'ssh 40: sshd: trampoline@pts/0'] })
    expect(parseMonitor('{"agents":"two"}').agents).toBeUndefined()
  })

  it('tolerates a missing or broken file', () => {
    expect(parseMonitor('')).toEqual({})
    expect(parseMonitor('{"idleSeconds":"lots"}')).toEqual({ idleSeconds: undefined, timeoutSeconds: undefined, activity: undefined, agents: undefined, checkedAt: undefined })
  })

  it('adds the time since the monitor looked, unless something is active', () => {
    expect(idleNow(parseMonitor(json), 1795000007)).toBe(127)
    expect(idleNow({ idleSeconds: 0, activity: ['exec 9: bash'], checkedAt: 1 }, 100)).toBe(0)
    expect(idleNow({}, 100)).toBeUndefined()
  })
})

describe('probe output', () => {
  it('splits monitor.json, the pod clock and df', () => {
    const out = '{"idleSeconds":5,"timeout":60,"active":[],"checkedAt":100}\n--trampoline-df--\n103\n--trampoline-df--\n    1B-blocks         Used\n 21474836480   3221225472\n'
    expect(splitProbe(out)).toEqual({ monitor: { idleSeconds: 5, timeoutSeconds: 60, activity: [], agents: undefined, checkedAt: 100 }, podNow: 103, store: { size: 21474836480, used: 3221225472 } })
  })

  it('survives an empty answer', () => {
    expect(splitProbe('')).toEqual({ monitor: {}, podNow: undefined, store: undefined })
    expect(parseDf('df: /nix: No such file or directory')).toBeUndefined()
  })
})

describe('statusRows', () => {
  const now = Date.parse('2026-11-22T10:00:00Z')

  it('lists an instance once whether it has a pod, a PVC or both', () => {
    const rows = statusRows([pod('web', ready)], [pvc('web'), pvc('old', '50Gi')], now)
    expect(rows.map((r) => [r.instance, r.phase, r.storeRequest])).toEqual([
      ['old', 'Down', '50Gi'],
      ['web', 'Running', '20Gi'],
    ])
    expect(rows[1].ageSeconds).toBe(7200)
    expect(rows[1].node).toBe('node1')
  })

  it('formats a table with a column per field', () => {
    const rows = statusRows([pod('web', ready)], [pvc('web')], now)
    rows[0] = { ...rows[0], idleSeconds: 300, idleTimeoutSeconds: 1800, storeUsedBytes: 3 * 1024 ** 3, storeSizeBytes: 20 * 1024 ** 3 }
    expect(formatRows(rows, false).split('\n')).toEqual([
      'INSTANCE  PHASE    AGE  IDLE    AGENTS  ACTIVITY  STORE',
      'web       Running  2h   5m/30m  -       -         3.0 GiB/20 GiB',
    ])
    expect(formatRows(rows, true).split('\n')[0]).toMatch(/^NAMESPACE  INSTANCE/)
  })

  it('shows the agent sessions of each instance', () => {
    const rows = statusRows([pod('web', ready), pod('api', ready)], [], now)
    expect(rows.map((r) => r.instance)).toEqual(['api', 'web'])
    rows[0] = { ...rows[0], idleSeconds: 0, agentSessions: 2, activity: ['exec 12: /usr/local/bin/claude --continue', 'ssh 40: sshd: trampoline@pts/0'] }
    rows[1] = { ...rows[1], idleSeconds: 0, agentSessions: 0, activity: ['exec 9: bash'] }
    expect(formatRows(rows, false).split('\n')).toEqual([
      'INSTANCE  PHASE    AGE  IDLE  AGENTS  ACTIVITY                                                                  STORE',
      'api       Running  2h   0s    2       exec 12: /usr/local/bin/claude --continue,ssh 40: sshd: trampoline@pts/0  -',
      'web       Running  2h   0s    0       exec 9: bash                                                              -',
    ])
    expect(JSON.parse(JSON.stringify(rows))[0]).toMatchObject({ instance: 'api', agentSessions: 2 })
  })
})

describe('statusRows with build-farm workers', () => {
  const worker = (instance: string, index: number, status: V1Pod['status']): V1Pod => ({
    metadata: { name: `trampoline-${instance}-worker-${index}`, namespace: 'default', labels: { ...labels(instance), 'app.kubernetes.io/component': 'worker' } },
    spec: { containers: [], nodeName: `node${index}` },
    status: { ...status, podIP: `10.0.0.${index}` },
  })
  const now = Date.parse('2026-11-22T09:00:00Z')

  it('lists workers under their instance, never as the instance\'s pod', () => {
    const rows = statusRows([worker('web', 1, ready), pod('web', ready), worker('web', 0, { phase: 'Succeeded' })], [], now)
    expect(rows).toHaveLength(1)
    expect(rows[0].pod).toBe('trampoline-web')
    expect(rows[0].phase).toBe('Running')
    expect(rows[0].workers).toEqual([
      { pod: 'trampoline-web-worker-0', phase: 'Stopped', node: 'node0', ip: '10.0.0.0' },
      { pod: 'trampoline-web-worker-1', phase: 'Running', node: 'node1', ip: '10.0.0.1' },
    ])
    expect(formatWorkers([{ ...rows[0], workers: [{ ...rows[0].workers![1], building: ['farm-1'] }] }])).toBe('  worker trampoline-web-worker-1  Running  on node1  building farm-1')
  })
})
