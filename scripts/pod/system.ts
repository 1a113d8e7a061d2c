// Architectures: the pod's Nix system (asked of the pod's own Nix, cached in the instance's
// local state per pod, since a new pod may land on another arch), and whether the cluster
// has nodes of the arch `setup --arch` asks for at all.
import { existsSync } from 'node:fs'
import { PassThrough } from 'node:stream'
import type { V1Node, V1Pod } from '@kubernetes/client-node'
import type { CommandContext } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { apiStatus, explainApiError, type Cluster } from '../kube/client.ts'
import { exec, type ExecSession } from '../kube/exec.ts'
import { readPod } from './pods.ts'
import { CURRENT_SYSTEM_ARGV, isSystemName, parseNixString } from '../local-nix.ts'
import { debug, warn } from '../log.ts'
import { describeArches, summariseArches } from '../preflight/findings.ts'
import { DOCTOR_HINT } from '../preflight/explain.ts'
import { InstanceState, instanceStateDir } from '../state.ts'
import { USER_CONTAINER } from './contract.ts'

/** Local state file: `{"pod":"<uid>","system":"x86_64-linux"}`, the system of that pod. */
export const POD_SYSTEM_FILE = 'pod-system'
const PROBE_TIMEOUT_MS = 15_000

export interface PodSystemCache {
  pod: string
  system: string
}

export function parsePodSystemCache(text: string | undefined): PodSystemCache | undefined {
  if (!text) return undefined
  try {
    const value = JSON.parse(text) as Partial<PodSystemCache>
    return typeof value.pod === 'string' && typeof value.system === 'string' && isSystemName(value.system) ? { pod: value.pod, system: value.system } : undefined
  } catch {
    return undefined
  }
}

/** The cached system when it is this pod's (same UID), else undefined. */
export function cachedSystem(state: Pick<InstanceState, 'read'>, podUid: string | undefined): string | undefined {
  const cached = parsePodSystemCache(state.read(POD_SYSTEM_FILE))
  return podUid && cached?.pod === podUid ? cached.system : undefined
}

function remember(state: Pick<InstanceState, 'write'>, podUid: string | undefined, system: string | undefined): void {
  if (podUid && system) state.write(POD_SYSTEM_FILE, `${JSON.stringify({ pod: podUid, system })}\n`)
}

/** Ask the pod's Nix (user container, bounded in time); undefined when it does not answer. */
async function askPod(cluster: Pick<Cluster, 'kc'>, namespace: string, pod: string): Promise<string | undefined> {
  const chunks: Buffer[] = []
  const stdout = new PassThrough().on('data', (chunk: Buffer) => chunks.push(chunk))
  let session: ExecSession | undefined
  const run = exec({ kc: cluster.kc, namespace, pod, container: USER_CONTAINER }, { command: CURRENT_SYSTEM_ARGV, stdout, onOpen: (s) => (session = s) })
  const timer = setTimeout(() => session?.abort(), PROBE_TIMEOUT_MS)
  const result = await run.catch((error: Error) => {
    debug(`asking pod ${pod} for its Nix system failed: ${error.message}`)
    return undefined
  }).finally(() => clearTimeout(timer))
  if (!result || result.message || result.exitCode !== 0) return undefined
  return parseNixString(Buffer.concat(chunks).toString('utf8'))
}

/**
 * The instance pod's Nix system (e.g. aarch64-linux): from the local cache when it names
 * this pod, else asked of the pod and cached. Undefined when the pod cannot say.
 */
export async function podSystem(context: CommandContext, pod?: V1Pod): Promise<string | undefined> {
  const current = pod ?? (await readPod(context))
  const uid = current?.metadata?.uid
  const cached = cachedSystem(context.state, uid)
  if (cached) return cached
  if (!current) return undefined
  const system = await askPod(context.cluster, context.cluster.namespace, context.names.pod)
  remember(context.state, uid, system)
  return system
}

/**
 * For `status --json`: each running instance's `system`. Instances set up from this
 * machine use (and fill) their cache; others' are asked without leaving state behind.
 */
export async function withPodSystems<Row extends { instance: string; namespace: string; phase: string; pod?: string }>(
  cluster: Pick<Cluster, 'kc' | 'context'>,
  rows: Row[],
  pods: V1Pod[],
): Promise<(Row & { system?: string })[]> {
  return Promise.all(
    rows.map(async (row) => {
      const pod = pods.find((p) => p.metadata?.name === row.pod && p.metadata?.namespace === row.namespace)
      if (!pod || row.phase !== 'Running' || !row.pod) return row
      const dir = instanceStateDir(cluster.context, row.namespace, row.instance)
      const state = new InstanceState(dir)
      const uid = pod.metadata?.uid
      let system = cachedSystem(state, uid)
      if (!system) {
        system = await askPod(cluster, row.namespace, row.pod)
        if (existsSync(dir)) remember(state, uid, system)
      }
      return system ? { ...row, system } : row
    }),
  )
}

/** What `setup --arch` should do, from the cluster's nodes. Pure. */
export function archVerdict(nodes: V1Node[], arch: string): { ok: true; note?: string } | { ok: false; message: string; hint: string } {
  const summary = summariseArches(nodes)
  const has = describeArches(summary)
  const match = summary.find((s) => s.arch === arch)
  if (match && match.usable > 0) return { ok: true }
  // Nodes of the arch that are not ready (cordoned, NotReady) may come back: setup waits and says why.
  if (match) return { ok: true, note: `no ${arch} node is ready right now (the cluster has: ${has}); the pod waits for one` }
  const usable = summary.filter((s) => s.usable > 0).map((s) => s.arch)
  return {
    ok: false,
    message: `no node of this cluster has arch ${arch} (it has: ${has})`,
    hint: [
      usable.length ? `Use --arch ${usable.join(' or --arch ')}, or --arch any.` : 'No node is ready at all: ask your cluster admin.',
      `Nodes a cluster autoscaler would add are not counted: if ${arch} nodes come from one, ask for a node of that arch first.`,
    ].join(' '),
  }
}

/**
 * Before `setup --arch ARCH` creates a pod that could never be scheduled: refuse within
 * seconds, naming the arches the cluster has. When nodes may not be listed (RBAC: nodes
 * are cluster-scoped, many users cannot read them), say so and let setup go on as before.
 */
export async function checkArchAvailable(context: Pick<CommandContext, 'cluster'>, arch: string): Promise<void> {
  if (!arch) return
  const { cluster } = context
  let nodes: V1Node[]
  try {
    nodes = (await cluster.core.listNode()).items
  } catch (error) {
    const { code } = apiStatus(error)
    if (code === 401 || code === undefined) throw explainApiError(error, cluster, 'list nodes')
    warn(`cannot list nodes (${code === 403 ? 'forbidden' : `HTTP ${code}`}), so whether any node has arch ${arch} is unknown: if none has, the pod stays Pending and setup says so when its wait ends. ${DOCTOR_HINT}`)
    return
  }
  const verdict = archVerdict(nodes, arch)
  if (!verdict.ok) throw new UserError(verdict.message, { hint: verdict.hint, exitCode: ExitCode.podFailed })
  if (verdict.note) warn(verdict.note)
}
