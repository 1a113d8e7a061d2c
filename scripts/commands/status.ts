// `trampoline status`: one line per instance in the namespace (or all namespaces): phase,
// age, idleness, agent sessions and activity (the pod's own monitor.json), and store use.
import type { CommandModule } from 'yargs'
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node'
import { connect, explainApiError, type Cluster } from '../kube/client.ts'
import { printResult, type GlobalOptions } from '../context.ts'
import { APP_SELECTOR, COMPONENT_LABEL, INSTANCE_LABEL, OWNER_LABEL } from '../instance.ts'
import { SIGNING_COMPONENT, storedPublicKey } from '../manifests/signing-secret.ts'
import { settingsFromPod, type CacheSettings } from '../manifests/pod.ts'
import { PassThrough } from 'node:stream'
import { exec, type ExecSession } from '../kube/exec.ts'
import { timeOf } from '../pod/diagnose.ts'
import { formatBytes, formatDuration } from '../units.ts'
import { withPodSystems } from '../pod/system.ts'
import { WORKER_COMPONENT } from '../manifests/worker.ts'
import { workerBuilds } from '../farm/farm.ts'
import { MONITOR_FILE, USER_CONTAINER } from '../pod/contract.ts'
import { stoppedPod } from '../pod/stopped.ts'

interface StatusArgs extends GlobalOptions {
  allNamespaces?: boolean
}

const PROBE_TIMEOUT_MS = 10_000
/** Separates monitor.json from df's output in one exec. */
const PROBE_SEPARATOR = '--trampoline-df--'

/** What the pod says about itself: container/shutdown-monitor.sh's monitor.json. */
export interface MonitorReport {
  idleSeconds?: number
  timeoutSeconds?: number
  activity?: string[]
  /** Agent (Claude Code) sessions running in the pod. */
  agents?: number
  /** The pod's clock (seconds) when the monitor last looked. */
  checkedAt?: number
}

export interface StoreUse {
  size: number
  used: number
}

export interface StatusRow {
  instance: string
  namespace: string
  owner?: string
  phase: string
  pod?: string
  node?: string
  ageSeconds?: number
  idleSeconds?: number
  idleTimeoutSeconds?: number
  activity?: string[]
  agentSessions?: number
  storeRequest?: string
  storeUsedBytes?: number
  storeSizeBytes?: number
  /** The public key the pod signs with (trusted-public-keys format); --json only. */
  signingKey?: string
  /** The binary caches the pod's daemon substitutes from; --json only. */
  substituters?: string[]
  /** The pod's Nix system (e.g. x86_64-linux), cached per pod; --json only. */
  system?: string
  /** Build-farm workers (setup --workers N); absent when the instance has none. */
  workers?: WorkerRow[]
}

export interface WorkerRow {
  pod: string
  phase: string
  node?: string
  ip?: string
  /** Derivation names its nix-daemon is building now (best effort: running workers only). */
  building?: string[]
}

export function isWorker(pod: V1Pod): boolean {
  return pod.metadata?.labels?.[COMPONENT_LABEL] === WORKER_COMPONENT
}

/** A pod of another layout has no caches we can read. */
function podCaches(pod: V1Pod): CacheSettings | undefined {
  try {
    return settingsFromPod(pod).caches
  } catch {
    return undefined
  }
}

/** Running, Starting, Pending, Stopped (idle: ...), Failed, or Down (store only, no pod). */
export function phaseOf(pod: V1Pod | undefined): string {
  if (!pod) return 'Down'
  if (pod.metadata?.deletionTimestamp) return 'Terminating'
  const phase = pod.status?.phase ?? 'Pending'
  const stopped = stoppedPod(pod)
  if (stopped) return stopped.idle ? `Stopped (${stopped.idle})` : 'Stopped'
  if (phase === 'Running') {
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
    return ready ? 'Running' : 'Starting'
  }
  return phase
}

/**
 * monitor.json: {"idle":false,"idleSeconds":120,"timeout":1800,"active":["ssh 41: sshd: trampoline"],
 * "agents":0,"lastPush":null,"checkedAt":1795000000}. Anything unreadable gives {}, a missing
 * field undefined (an older pod).
 */
export function parseMonitor(text: string): MonitorReport {
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(text)
  } catch {
    return {}
  }
  if (!raw || typeof raw !== 'object') return {}
  const number = (key: string) => (typeof raw[key] === 'number' && Number.isFinite(raw[key]) ? (raw[key] as number) : undefined)
  return {
    idleSeconds: number('idleSeconds'),
    timeoutSeconds: number('timeout'),
    activity: Array.isArray(raw.active) ? raw.active.map(String) : undefined,
    agents: number('agents'),
    checkedAt: number('checkedAt'),
  }
}

/** The monitor writes every few seconds: add the time since, by the pod's own clock. */
export function idleNow(monitor: MonitorReport, podNow: number | undefined): number | undefined {
  if (monitor.idleSeconds === undefined) return undefined
  if (monitor.activity?.length || monitor.checkedAt === undefined || podNow === undefined) return monitor.idleSeconds
  return monitor.idleSeconds + Math.max(0, podNow - monitor.checkedAt)
}

/** `df -B1 --output=size,used /nix` prints a header and one line of numbers. */
export function parseDf(text: string): StoreUse | undefined {
  const numbers = text.trim().split('\n').pop()?.trim().split(/\s+/).map(Number)
  if (!numbers || numbers.length < 2 || numbers.some((n) => !Number.isFinite(n))) return undefined
  return { size: numbers[0], used: numbers[1] }
}

export function splitProbe(stdout: string): { monitor: MonitorReport; podNow?: number; store?: StoreUse } {
  const [monitor = '', clock = '', df = ''] = stdout.split(PROBE_SEPARATOR)
  const podNow = Number.parseInt(clock.trim(), 10)
  return { monitor: parseMonitor(monitor.trim()), podNow: Number.isFinite(podNow) ? podNow : undefined, store: parseDf(df) }
}

/** The instance rows from pods and PVCs: an instance exists while either does. */
export function statusRows(pods: V1Pod[], pvcs: V1PersistentVolumeClaim[], now: number): StatusRow[] {
  const rows = new Map<string, StatusRow>()
  const key = (namespace: string, instance: string) => `${namespace}/${instance}`
  for (const pvc of pvcs) {
    const instance = pvc.metadata?.labels?.[INSTANCE_LABEL]
    if (!instance) continue
    const namespace = pvc.metadata?.namespace ?? ''
    rows.set(key(namespace, instance), {
      instance,
      namespace,
      owner: pvc.metadata?.labels?.[OWNER_LABEL],
      phase: 'Down',
      storeRequest: pvc.status?.capacity?.storage ?? pvc.spec?.resources?.requests?.storage,
    })
  }
  for (const pod of pods) {
    const instance = pod.metadata?.labels?.[INSTANCE_LABEL]
    if (!instance || isWorker(pod)) continue
    const namespace = pod.metadata?.namespace ?? ''
    const row = rows.get(key(namespace, instance)) ?? { instance, namespace, phase: 'Down' }
    const created = timeOf(pod.metadata?.creationTimestamp)
    rows.set(key(namespace, instance), {
      ...row,
      owner: pod.metadata?.labels?.[OWNER_LABEL] ?? row.owner,
      phase: phaseOf(pod),
      pod: pod.metadata?.name,
      node: pod.spec?.nodeName,
      ageSeconds: created ? Math.max(0, (now - created) / 1000) : undefined,
      substituters: podCaches(pod)?.substituters,
    })
  }
  // Workers belong to their instance's row (a worker without one is shown too: gc removes it).
  for (const pod of pods.filter(isWorker)) {
    const instance = pod.metadata?.labels?.[INSTANCE_LABEL]
    if (!instance) continue
    const namespace = pod.metadata?.namespace ?? ''
    const row = rows.get(key(namespace, instance)) ?? { instance, namespace, phase: 'Down' }
    const worker: WorkerRow = { pod: pod.metadata?.name ?? '', phase: phaseOf(pod), node: pod.spec?.nodeName, ip: pod.status?.podIP }
    rows.set(key(namespace, instance), { ...row, workers: [...(row.workers ?? []), worker].sort((a, b) => a.pod.localeCompare(b.pod)) })
  }
  return [...rows.values()].sort((a, b) => a.namespace.localeCompare(b.namespace) || a.instance.localeCompare(b.instance))
}

/** Worker lines under their instance's row. */
export function formatWorkers(rows: StatusRow[]): string {
  const lines: string[] = []
  for (const row of rows) {
    for (const w of row.workers ?? []) {
      const building = w.building === undefined ? '' : w.building.length ? `  building ${w.building.join(', ')}` : '  idle'
      lines.push(`  worker ${w.pod}  ${w.phase}${w.node ? `  on ${w.node}` : ''}${building}`)
    }
  }
  return lines.join('\n')
}

export function formatRows(rows: StatusRow[], showNamespace: boolean): string {
  const header = [...(showNamespace ? ['NAMESPACE'] : []), 'INSTANCE', 'PHASE', 'AGE', 'IDLE', 'AGENTS', 'ACTIVITY', 'STORE']
  const lines = rows.map((r) => [
    ...(showNamespace ? [r.namespace] : []),
    r.instance,
    r.phase,
    r.ageSeconds === undefined ? '-' : formatDuration(r.ageSeconds),
    r.idleSeconds === undefined ? '-' : `${formatDuration(r.idleSeconds)}${r.idleTimeoutSeconds ? `/${formatDuration(r.idleTimeoutSeconds)}` : ''}`,
    r.agentSessions === undefined ? '-' : String(r.agentSessions),
    r.activity?.length ? r.activity.join(',') : '-',
    storeText(r),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  return [header, ...lines].map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n')
}

function storeText(row: StatusRow): string {
  if (row.storeUsedBytes !== undefined && row.storeSizeBytes) return `${formatBytes(row.storeUsedBytes)}/${formatBytes(row.storeSizeBytes)}`
  return row.storeRequest ?? '-'
}

async function probe(cluster: Cluster, row: StatusRow): Promise<Partial<StatusRow>> {
  const script = `cat ${MONITOR_FILE} 2>/dev/null; echo ${PROBE_SEPARATOR}; date +%s; echo ${PROBE_SEPARATOR}; df -B1 --output=size,used /nix 2>/dev/null`
  const chunks: Buffer[] = []
  const stdout = new PassThrough().on('data', (c: Buffer) => chunks.push(c))
  let session: ExecSession | undefined
  const target = { kc: cluster.kc, namespace: row.namespace, pod: row.pod!, container: USER_CONTAINER }
  const run = exec(target, { command: ['sh', '-c', script], stdout, onOpen: (s) => (session = s) })
  // A pod that does not answer must not hold up the table.
  const timer = setTimeout(() => session?.abort(), PROBE_TIMEOUT_MS)
  const result = await run.catch(() => undefined).finally(() => clearTimeout(timer))
  if (!result || result.message) return {}
  const { monitor, podNow, store } = splitProbe(Buffer.concat(chunks).toString('utf8'))
  return {
    idleSeconds: idleNow(monitor, podNow),
    idleTimeoutSeconds: monitor.timeoutSeconds,
    activity: monitor.activity,
    agentSessions: monitor.agents,
    storeUsedBytes: store?.used,
    storeSizeBytes: store?.size,
  }
}

/** What each running worker builds: the build directories of its nix-daemon (bounded, best effort). */
async function withWorkerBuilds(cluster: Cluster, row: StatusRow): Promise<StatusRow> {
  if (!row.workers?.length) return row
  const workers = await Promise.all(
    row.workers.map(async (w) => {
      if (w.phase !== 'Running') return w
      const building = await Promise.race([
        workerBuilds({ cluster: { ...cluster, namespace: row.namespace } }, w.pod),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), PROBE_TIMEOUT_MS).unref()),
      ])
      return building === undefined ? w : { ...w, building }
    }),
  )
  return { ...row, workers }
}

/** Each instance's public signing key, from its signing Secret (none where we may not list Secrets). */
async function withSigningKeys(cluster: Cluster, rows: StatusRow[], allNamespaces: boolean): Promise<StatusRow[]> {
  const labelSelector = `${APP_SELECTOR},${COMPONENT_LABEL}=${SIGNING_COMPONENT}`
  const secrets = await (allNamespaces
    ? cluster.core.listSecretForAllNamespaces({ labelSelector })
    : cluster.core.listNamespacedSecret({ labelSelector, namespace: cluster.namespace })
  ).then((list) => list.items, () => [])
  const keys = new Map(secrets.map((s) => [`${s.metadata?.namespace}/${s.metadata?.labels?.[INSTANCE_LABEL]}`, storedPublicKey(s)]))
  return rows.map((row) => {
    const signingKey = keys.get(`${row.namespace}/${row.instance}`)
    return signingKey ? { ...row, signingKey } : row
  })
}

export const command: CommandModule<GlobalOptions, StatusArgs> = {
  command: 'status',
  describe: 'List instances: phase, age, idle time and activity, store use',
  builder: (yargs) => yargs.option('all-namespaces', { alias: 'A', type: 'boolean', describe: 'Every namespace you can see' }),
  handler: async (args) => {
    const cluster = connect(args)
    const query = { labelSelector: APP_SELECTOR }
    let pods: V1Pod[]
    let pvcs: V1PersistentVolumeClaim[]
    try {
      ;[pods, pvcs] = args.allNamespaces
        ? await Promise.all([
            cluster.core.listPodForAllNamespaces(query).then((l) => l.items),
            cluster.core.listPersistentVolumeClaimForAllNamespaces(query).then((l) => l.items),
          ])
        : await Promise.all([
            cluster.core.listNamespacedPod({ ...query, namespace: cluster.namespace }).then((l) => l.items),
            cluster.core.listNamespacedPersistentVolumeClaim({ ...query, namespace: cluster.namespace }).then((l) => l.items),
          ])
    } catch (error) {
      throw explainApiError(error, cluster, args.allNamespaces ? 'list pods in all namespaces' : 'list pods')
    }
    let rows = statusRows(pods, pvcs, Date.now())
    if (args.name) rows = rows.filter((r) => r.instance === args.name)
    if (args.json) rows = await withSigningKeys(cluster, rows, args.allNamespaces ?? false)
    rows = await Promise.all(rows.map(async (row) => (row.phase === 'Running' ? { ...row, ...(await probe(cluster, row)) } : row)))
    rows = await Promise.all(rows.map((row) => withWorkerBuilds(cluster, row)))
    if (args.json) rows = await withPodSystems(cluster, rows, pods)
    printResult({ json: args.json ?? false }, rows, () =>
      rows.length
        ? [formatRows(rows, args.allNamespaces ?? false), formatWorkers(rows)].filter(Boolean).join('\n')
        : `no instances in ${args.allNamespaces ? 'any namespace' : `namespace "${cluster.namespace}"`} (start one with: trampoline setup)`,
    )
  },
}
