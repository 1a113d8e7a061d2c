// `trampoline doctor`: can this cluster, with these credentials, run trampoline? It asks
// the API (SelfSubjectAccessReviews for every right the tool uses, the namespace's Pod
// Security labels, a server-side dry run of the pod, StorageClasses, nodes) and prints
// each finding with its fix. The conclusions are pure functions in scripts/preflight/.
import { join } from 'node:path'
import type { CommandModule } from 'yargs'
import { ApiException, AuthenticationV1Api, AuthorizationV1Api, StorageV1Api, type V1Node, type V1StorageClass } from '@kubernetes/client-node'
import { commandContext, printResult, type CommandContext, type GlobalOptions } from '../context.ts'
import { UserError } from '../errors.ts'
import { apiStatus, explainApiError, isConflict, isNotFound, networkErrorCode } from '../kube/client.ts'
import { readPod } from '../pod/pods.ts'
import { buildPod, templateSettings, withSpecHash } from '../manifests/pod.ts'
import { resolvePodSettings } from '../manifests/settings.ts'
import { containerDir, loadTemplate } from '../manifests/template.ts'
import { parseSettingOptions } from './setup.ts'
import {
  admissionFinding,
  formatFindings,
  nodeArchFinding,
  podSecurityFinding,
  storageClassFinding,
  verdict,
  type DryRunResult,
  type Finding,
  type StorageInput,
} from '../preflight/findings.ts'
import { accessQuestions, grantInstructions, rbacFindings, type AccessAnswer } from '../preflight/rbac.ts'

interface DoctorArgs extends GlobalOptions {
  arch?: string
  storageClass?: string
}

export interface DoctorReport {
  context: string
  server: string
  namespace: string
  instance: string
  /** Who the cluster says we are (SelfSubjectReview); absent on servers before 1.28. */
  user?: { username?: string; groups?: string[] }
  ok: boolean
  /** 0, 4 (a required right is missing) or 6 (the cluster cannot run the pod). */
  exitCode: number
  findings: Finding[]
}

export const RBAC_FILE = join(containerDir(), 'rbac.yaml')

export const command: CommandModule<GlobalOptions, DoctorArgs> = {
  command: 'doctor',
  describe: 'Check that the cluster and your rights can run trampoline (RBAC, Pod Security, StorageClass, node architectures); each problem with its fix',
  builder: (yargs) =>
    yargs
      .option('arch', { type: 'string', describe: 'Check for nodes of this architecture (as setup --arch)' })
      .option('storage-class', { type: 'string', describe: 'Check this StorageClass instead of the default one (as setup --storage-class)' })
      .example('$0 doctor', 'check the current context and namespace')
      .example('$0 doctor -n builds --arch arm64 --json', 'another namespace, arm64 nodes, machine-readable'),
  handler: async (args) => {
    const options = parseSettingOptions({ arch: args.arch })
    const context = commandContext(args)
    const report = await doctor(context, { arch: options.arch || undefined, storageClass: args.storageClass })
    printResult(context, report, () => humanReport(report))
    if (!report.ok) {
      const failed = verdict(report.findings).failed.length
      throw new UserError(`doctor: ${failed} check${failed === 1 ? '' : 's'} failed (see ${context.json ? 'the findings' : 'above'})`, { exitCode: report.exitCode })
    }
  },
}

/** Errors no check can work around (unreachable cluster, rejected or failing credentials). */
function fatal(error: unknown): boolean {
  return error instanceof UserError || !!networkErrorCode(error) || (error instanceof ApiException && error.code === 401)
}

/** Why a read failed, in a few words ("forbidden", "HTTP 404"), or throw when nothing can go on. */
function unreadable(error: unknown, cluster: CommandContext['cluster'], doing: string): string {
  if (fatal(error)) throw explainApiError(error, cluster, doing)
  const { code, message } = apiStatus(error)
  if (code === 403) return 'forbidden'
  if (code !== undefined) return `HTTP ${code}${message ? `: ${message}` : ''}`
  return (error as Error)?.message ?? String(error)
}

async function whoAmI(context: CommandContext): Promise<DoctorReport['user']> {
  const { cluster } = context
  try {
    const review = await cluster.kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    })
    const info = review.status?.userInfo
    return info ? { username: info.username, groups: info.groups } : undefined
  } catch (error) {
    unreadable(error, cluster, 'ask the cluster who we are')
    return undefined
  }
}

async function reviewAccess(context: CommandContext): Promise<AccessAnswer[]> {
  const { cluster } = context
  const api = cluster.kc.makeApiClient(AuthorizationV1Api)
  return Promise.all(
    accessQuestions(cluster.namespace).map(async (question): Promise<AccessAnswer> => {
      try {
        const review = await api.createSelfSubjectAccessReview({
          body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: question.resourceAttributes } },
        })
        return { question, allowed: review.status?.allowed === true }
      } catch (error) {
        return { question, error: unreadable(error, cluster, 'ask the cluster about our rights') }
      }
    }),
  )
}

async function namespaceLabels(context: CommandContext): Promise<Finding> {
  const { cluster } = context
  try {
    const namespace = await cluster.core.readNamespace({ name: cluster.namespace })
    return podSecurityFinding(cluster.namespace, namespace.metadata?.labels ?? {})
  } catch (error) {
    if (isNotFound(error)) return podSecurityFinding(cluster.namespace, undefined, undefined, true)
    return podSecurityFinding(cluster.namespace, undefined, unreadable(error, cluster, `read namespace ${cluster.namespace}`))
  }
}

/** The pod setup would create, sent with dryRun=All: Pod Security, quotas, webhooks all answer. */
async function dryRunPod(context: CommandContext, arch: string | undefined, mayCreate: boolean): Promise<DryRunResult> {
  const { cluster, names, labels } = context
  if (!mayCreate) return { outcome: 'skipped', why: 'you may not create pods (see Rights)' }
  try {
    const existing = await readPod(context)
    if (existing && !existing.metadata?.deletionTimestamp) return { outcome: 'exists' }
  } catch {
    // Not allowed to read it: the dry run says more.
  }
  const template = loadTemplate()
  const settings = resolvePodSettings(parseSettingOptions({ arch }), undefined, templateSettings(template))
  const body = withSpecHash(buildPod(template, { names, labels, settings }))
  try {
    await cluster.core.createNamespacedPod({ namespace: cluster.namespace, body, dryRun: 'All' })
    return { outcome: 'admitted' }
  } catch (error) {
    if (isConflict(error)) return { outcome: 'exists' }
    if (fatal(error)) throw explainApiError(error, cluster, 'dry-run the pod')
    const { code, message, reason } = apiStatus(error)
    return { outcome: 'rejected', code, message: message ?? reason ?? String((error as Error)?.message ?? error) }
  }
}

async function storage(context: CommandContext, requested: string | undefined): Promise<Finding> {
  const { cluster, names } = context
  const input: StorageInput = { requested }
  try {
    const pvc = await cluster.core.readNamespacedPersistentVolumeClaim({ name: names.pvc, namespace: cluster.namespace })
    input.pvc = { name: names.pvc, phase: pvc.status?.phase, storageClassName: pvc.spec?.storageClassName }
  } catch (error) {
    if (!isNotFound(error)) unreadable(error, cluster, `read PVC ${names.pvc}`)
  }
  try {
    input.classes = (await cluster.kc.makeApiClient(StorageV1Api).listStorageClass()).items as V1StorageClass[]
  } catch (error) {
    input.unreadable = unreadable(error, cluster, 'list StorageClasses')
  }
  return storageClassFinding(input)
}

async function nodes(context: CommandContext, arch: string | undefined): Promise<Finding> {
  const { cluster } = context
  try {
    return nodeArchFinding({ nodes: (await cluster.core.listNode()).items as V1Node[], arch })
  } catch (error) {
    return nodeArchFinding({ unreadable: unreadable(error, cluster, 'list nodes'), arch })
  }
}

export async function doctor(context: CommandContext, options: { arch?: string; storageClass?: string }): Promise<DoctorReport> {
  const { cluster, names } = context
  // First alone: an unreachable cluster or failing credentials end here, once.
  const user = await whoAmI(context)
  const answers = await reviewAccess(context)
  const mayCreatePods = answers.some((a) => a.question.rule.resource === 'pods' && !a.question.rule.clusterScoped && a.question.verb === 'create' && a.allowed === true)
  const [podSecurity, admission, store, arch] = await Promise.all([
    namespaceLabels(context),
    dryRunPod(context, options.arch, mayCreatePods).then((result) => admissionFinding(cluster.namespace, names.pod, result)),
    storage(context, options.storageClass),
    nodes(context, options.arch),
  ])
  const findings = [...rbacFindings(answers, cluster.namespace), podSecurity, admission, store, arch]
  const { ok, exitCode } = verdict(findings)
  return { context: cluster.context, server: cluster.server, namespace: cluster.namespace, instance: names.instance, user, ok, exitCode, findings }
}

export function humanReport(report: DoctorReport): string {
  const who = report.user?.username ? `, as ${report.user.username}${report.user.groups?.length ? ` (groups: ${report.user.groups.join(', ')})` : ''}` : ''
  const lines = [`cluster ${report.server} (context ${report.context}), namespace ${report.namespace}${who}`, '', formatFindings(report.findings)]
  const { failed, warnings } = verdict(report.findings)
  const rbacProblems = report.findings.filter((f) => f.check === 'rbac' && f.status !== 'pass')
  if (rbacProblems.some((f) => f.status === 'fail')) {
    const clusterRead = rbacProblems.some((f) => f.subject.endsWith('(cluster-wide)'))
    lines.push('', ...grantInstructions(report.namespace, RBAC_FILE, report.user?.username, clusterRead))
  }
  lines.push(
    '',
    failed.length
      ? `${failed.length} problem${failed.length === 1 ? '' : 's'}${warnings.length ? `, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}` : ''}: trampoline will not work fully here until they are fixed`
      : `all required checks pass${warnings.length ? ` (${warnings.length} warning${warnings.length === 1 ? '' : 's'}: optional)` : ''}`,
  )
  return lines.join('\n')
}

