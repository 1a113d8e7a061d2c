// What `trampoline doctor` concludes from what the API said: pure functions from API
// results to findings, each with the fix when something is wrong. No I/O here; the
// command (commands/doctor.ts) makes the calls.
import type { V1Node, V1StorageClass } from '@kubernetes/client-node'
import { ExitCode } from '../errors.ts'

export type FindingStatus = 'pass' | 'warn' | 'fail'
export type CheckName = 'rbac' | 'pod-security' | 'admission' | 'storage-class' | 'node-arch'

export interface Finding {
  check: CheckName | string
  /** What the finding is about: a resource, a namespace, a StorageClass... */
  subject: string
  status: FindingStatus
  /** A missing optional right or an unknown is a warning, never a failure. */
  optional: boolean
  message: string
  /** What to do; present when status is not pass. */
  fix?: string
  /** rbac: the verbs denied. */
  missing?: string[]
  why?: string
}

export const ENFORCE_LABEL = 'pod-security.kubernetes.io/enforce'
const DEFAULT_CLASS_ANNOTATIONS = ['storageclass.kubernetes.io/is-default-class', 'storageclass.beta.kubernetes.io/is-default-class']
export const ARCH_LABEL = 'kubernetes.io/arch'

const privilegedFix = (namespace: string) =>
  `the nix-daemon container must run privileged (it builds in sandboxes): ask your cluster admin to allow it in namespace "${namespace}" ` +
  `(kubectl label namespace ${namespace} ${ENFORCE_LABEL}=privileged --overwrite), or use -n with a namespace that allows privileged pods`

/** (b) The namespace's Pod Security enforce level must allow a privileged pod: only `privileged` (or no label) does. */
export function podSecurityFinding(namespace: string, labels: Record<string, string> | undefined, unreadable?: string, missing = false): Finding {
  const base = { check: 'pod-security', subject: `namespace ${namespace}`, optional: false }
  if (missing) {
    return { ...base, status: 'fail', message: `namespace "${namespace}" does not exist`, fix: `create it (kubectl create namespace ${namespace}) or pick another with -n` }
  }
  if (!labels) {
    return {
      ...base,
      status: 'warn',
      optional: true,
      message: `cannot read the labels of namespace "${namespace}"${unreadable ? ` (${unreadable})` : ''}; the admission dry run below tells whether the pod is allowed`,
      fix: `optional: "get" on namespace "${namespace}" itself (the Role in container/rbac.yaml has it)`,
    }
  }
  const level = labels[ENFORCE_LABEL]
  if (level === undefined) {
    return { ...base, status: 'pass', message: `namespace "${namespace}" sets no ${ENFORCE_LABEL} label: privileged pods are allowed (unless the cluster's default level says otherwise; see the dry run)` }
  }
  if (level === 'privileged') {
    return { ...base, status: 'pass', message: `namespace "${namespace}" enforces Pod Security level "privileged": the privileged nix-daemon container is allowed` }
  }
  return {
    ...base,
    status: 'fail',
    message: `namespace "${namespace}" enforces Pod Security level "${level}", which forbids the privileged nix-daemon container`,
    fix: privilegedFix(namespace),
  }
}

export type DryRunResult =
  | { outcome: 'admitted' }
  | { outcome: 'exists' }
  | { outcome: 'rejected'; code?: number; message: string }
  | { outcome: 'skipped'; why: string }

/** The pod as setup would create it, sent with dryRun=All: every admission check, nothing created. */
export function admissionFinding(namespace: string, pod: string, result: DryRunResult): Finding {
  const base = { check: 'admission', subject: `pod ${pod}`, optional: false }
  switch (result.outcome) {
    case 'admitted':
      return { ...base, status: 'pass', message: `a server-side dry run of pod ${pod} (privileged nix-daemon) passes admission in namespace "${namespace}"` }
    case 'exists':
      return { ...base, status: 'pass', message: `pod ${pod} exists already: it passed admission when it was created` }
    case 'skipped':
      return { ...base, status: 'warn', optional: true, message: `no admission dry run: ${result.why}` }
    case 'rejected': {
      const message = result.message
      if (/violates PodSecurity/i.test(message)) {
        return { ...base, status: 'fail', message: `Pod Security admission rejects the pod: ${message}`, fix: privilegedFix(namespace) }
      }
      if (/exceeded quota/i.test(message)) {
        return { ...base, status: 'fail', message: `a ResourceQuota leaves no room for the pod: ${message}`, fix: 'ask for a smaller pod (setup --cpu/--memory), free quota in the namespace, or ask your admin for more' }
      }
      if (/does not support dry run/i.test(message)) {
        return { ...base, status: 'warn', optional: true, message: `the dry run cannot tell: ${message}` }
      }
      return { ...base, status: 'fail', message: `admission rejects the pod${result.code ? ` (HTTP ${result.code})` : ''}: ${message}`, fix: 'the message names the policy (webhook, LimitRange, quota) that refuses it: ask your cluster admin about it' }
    }
  }
}

export interface StorageInput {
  /** Undefined when listing failed (unreadable says why). */
  classes?: V1StorageClass[]
  unreadable?: string
  /** --storage-class */
  requested?: string
  /** The instance's store volume, when it exists already. */
  pvc?: { name: string; phase?: string; storageClassName?: string }
}

function isDefaultClass(sc: V1StorageClass): boolean {
  return DEFAULT_CLASS_ANNOTATIONS.some((a) => sc.metadata?.annotations?.[a] === 'true')
}

const classNames = (classes: V1StorageClass[]) => classes.map((c) => c.metadata?.name ?? '').filter(Boolean)

/** (c) A default StorageClass exists, or the one asked for does (the store volume needs one to bind). */
export function storageClassFinding(input: StorageInput): Finding {
  const base = { check: 'storage-class', subject: 'store volume', optional: false }
  if (input.pvc?.phase === 'Bound') {
    return { ...base, status: 'pass', message: `the store volume ${input.pvc.name} exists and is bound${input.pvc.storageClassName ? ` (StorageClass ${input.pvc.storageClassName})` : ''}` }
  }
  const wanted = input.pvc?.storageClassName || input.requested
  if (!input.classes) {
    return {
      ...base,
      status: 'warn',
      optional: true,
      message: `cannot list StorageClasses${input.unreadable ? ` (${input.unreadable})` : ''}: whether ${wanted ? `"${wanted}"` : 'a default one'} exists is unknown`,
      fix: 'optional: "list" on storageclasses (the ClusterRole in container/rbac.yaml); otherwise setup says so when the store volume does not bind',
    }
  }
  const names = classNames(input.classes)
  const known = names.length ? names.join(', ') : 'none'
  if (wanted) {
    const found = input.classes.find((c) => c.metadata?.name === wanted)
    if (found) return { ...base, status: 'pass', message: `StorageClass "${wanted}" exists (provisioner ${found.provisioner})` }
    return {
      ...base,
      status: 'fail',
      subject: `StorageClass ${wanted}`,
      message: `StorageClass "${wanted}" does not exist (the cluster has: ${known})`,
      fix: input.pvc ? `the store volume ${input.pvc.name} asks for it: trampoline clean (deletes the store) and setup with --storage-class ${names[0] ?? 'NAME'}` : `pass --storage-class with one of: ${known}`,
    }
  }
  const defaults = input.classes.filter(isDefaultClass)
  if (defaults.length === 0) {
    return {
      ...base,
      status: 'fail',
      message: `the cluster has no default StorageClass (it has: ${known}), so a store volume without --storage-class never binds`,
      fix: names.length
        ? `pass --storage-class ${names.length === 1 ? names[0] : `with one of: ${known}`}, or ask your cluster admin to mark one default (annotation storageclass.kubernetes.io/is-default-class=true)`
        : 'ask your cluster admin for a StorageClass with a provisioner (a default one), or a PersistentVolume for the store',
    }
  }
  const names2 = classNames(defaults)
  return { ...base, status: 'pass', message: `default StorageClass "${names2[0]}" (provisioner ${defaults[0].provisioner})${defaults.length > 1 ? `; ${defaults.length} classes claim to be the default (${names2.join(', ')}): the newest wins` : ''}` }
}

export interface ArchSummary {
  arch: string
  nodes: number
  /** Ready and not cordoned. */
  usable: number
}

function isUsable(node: V1Node): boolean {
  return !node.spec?.unschedulable && (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')
}

export function summariseArches(nodes: V1Node[]): ArchSummary[] {
  const byArch = new Map<string, ArchSummary>()
  for (const node of nodes) {
    const arch = node.metadata?.labels?.[ARCH_LABEL] ?? 'unlabelled'
    const entry = byArch.get(arch) ?? { arch, nodes: 0, usable: 0 }
    entry.nodes++
    if (isUsable(node)) entry.usable++
    byArch.set(arch, entry)
  }
  return [...byArch.values()].sort((a, b) => b.usable - a.usable || a.arch.localeCompare(b.arch))
}

export function describeArches(summary: ArchSummary[]): string {
  if (!summary.length) return 'no nodes'
  return summary.map((s) => `${s.arch} (${s.usable === s.nodes ? `${s.nodes} node${s.nodes === 1 ? '' : 's'}` : `${s.usable} of ${s.nodes} nodes ready`})`).join(', ')
}

/** (d) Ready, schedulable nodes of the requested --arch exist; says which arches the cluster has. */
export function nodeArchFinding(input: { nodes?: V1Node[]; unreadable?: string; arch?: string }): Finding {
  const base = { check: 'node-arch', subject: input.arch ? `arch ${input.arch}` : 'nodes', optional: false }
  if (!input.nodes) {
    return {
      ...base,
      status: 'warn',
      optional: true,
      message: `cannot list nodes${input.unreadable ? ` (${input.unreadable})` : ''}: whether ${input.arch ? `${input.arch} nodes` : 'a node'} can take the pod is unknown`,
      fix: 'optional: "list" on nodes (the ClusterRole in container/rbac.yaml); otherwise setup says so when the pod cannot be scheduled',
    }
  }
  const summary = summariseArches(input.nodes)
  const has = describeArches(summary)
  if (input.arch) {
    const match = summary.find((s) => s.arch === input.arch)
    if (match && match.usable > 0) return { ...base, status: 'pass', message: `${match.usable} ready node${match.usable === 1 ? '' : 's'} with arch ${input.arch} (the cluster has: ${has})` }
    const usable = summary.filter((s) => s.usable > 0).map((s) => s.arch)
    return {
      ...base,
      status: 'fail',
      message: `no ready node has arch ${input.arch} (the cluster has: ${has})`,
      fix: usable.length ? `use --arch ${usable[0]}${usable.length > 1 ? ` (or ${usable.slice(1).join(', ')})` : ''}, or --arch any; or ask for ${input.arch} nodes` : 'no node is ready: ask your cluster admin',
    }
  }
  if (summary.some((s) => s.usable > 0)) return { ...base, status: 'pass', message: `ready nodes: ${has}; setup --arch picks one of them` }
  return { ...base, status: 'fail', message: `no node is ready and schedulable (${has})`, fix: 'ask your cluster admin: no pod can start' }
}

export interface Verdict {
  ok: boolean
  /** 0; 4 (forbidden) when a required right is missing; 6 (the pod could not start) for any other failure. */
  exitCode: number
  failed: Finding[]
  warnings: Finding[]
}

export function verdict(findings: Finding[]): Verdict {
  const failed = findings.filter((f) => f.status === 'fail')
  const warnings = findings.filter((f) => f.status === 'warn')
  const exitCode = failed.some((f) => f.check === 'rbac') ? ExitCode.forbidden : failed.length ? ExitCode.podFailed : ExitCode.ok
  return { ok: failed.length === 0, exitCode, failed, warnings }
}

const HEADINGS: Record<string, string> = {
  rbac: 'Rights (RBAC, via SelfSubjectAccessReview)',
  'pod-security': 'Pod Security',
  admission: 'Admission',
  'storage-class': 'Store volume',
  'node-arch': 'Nodes',
}

const MARK: Record<FindingStatus, string> = { pass: 'ok  ', warn: 'warn', fail: 'FAIL' }

/** The human report: findings grouped by check, each problem followed by its fix. */
export function formatFindings(findings: Finding[]): string {
  const lines: string[] = []
  let current: string | undefined
  for (const finding of findings) {
    if (finding.check !== current) {
      current = finding.check
      if (lines.length) lines.push('')
      lines.push(HEADINGS[finding.check] ?? finding.check)
    }
    lines.push(`  ${MARK[finding.status]}  ${finding.message}`)
    if (finding.fix && finding.status !== 'pass') lines.push(`        fix: ${finding.fix}`)
  }
  return lines.join('\n')
}
