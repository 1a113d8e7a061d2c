// Every RBAC right trampoline uses, with why, and what SelfSubjectAccessReviews say about
// them as findings. container/rbac.yaml grants exactly these (rbac.test.ts holds the two,
// and every API call in scripts/, to each other). Pure: no I/O.
import type { Finding } from './findings.ts'

export interface RbacRule {
  /** API group: '' for core. */
  group: string
  /** Resource, with a subresource after a slash (pods/exec). */
  resource: string
  verbs: string[]
  /** Cluster-scoped (nodes, storageclasses) or across namespaces: a ClusterRole's business. */
  clusterScoped?: boolean
  /** Trampoline works without it (a little less helpful); doctor warns instead of failing. */
  optional?: boolean
  why: string
}

/** Namespaced rules: the Role in container/rbac.yaml, all required but the last one. */
export const NAMESPACED_RULES: RbacRule[] = [
  { group: '', resource: 'pods', verbs: ['get', 'list', 'watch', 'create', 'delete'], why: 'the instance pod: setup creates and waits for it, status lists it, down/clean/gc delete it' },
  // Exec and port-forward run over websockets, which start as GET: the API server checks
  // "get" (and, from Kubernetes 1.35, "create" too; SPDY clients such as kubectl need create).
  { group: '', resource: 'pods/exec', verbs: ['get', 'create'], why: 'push-tarball, build, shell, sh, claude, copy-closure, maintenance run commands in the pod' },
  { group: '', resource: 'pods/portforward', verbs: ['get', 'create'], why: 'ssh, proxy, push-flake and copy-closure reach the pod\'s sshd' },
  { group: '', resource: 'pods/log', verbs: ['get'], why: 'setup shows the log of a container that fails to start' },
  { group: '', resource: 'persistentvolumeclaims', verbs: ['get', 'list', 'create', 'patch', 'delete'], why: 'the store volume: setup creates (and resizes) it, status lists it, clean/gc delete it' },
  { group: '', resource: 'secrets', verbs: ['get', 'list', 'create', 'patch', 'update', 'delete'], why: 'SSH keys, the signing key and the agent key: setup and claude write them, clean/gc delete them' },
  { group: '', resource: 'configmaps', verbs: ['get', 'list', 'create', 'update', 'delete'], why: 'the pod scripts: setup writes them, clean/gc delete them' },
  { group: '', resource: 'events', verbs: ['list'], why: 'setup explains why the pod or its volume is waiting' },
  { group: 'networking.k8s.io', resource: 'networkpolicies', verbs: ['get', 'list', 'create', 'update', 'delete'], why: 'setup --egress writes the instance\'s NetworkPolicy, clean and gc remove it' },
  // The namespace object itself: a Role in namespace X grants get on X only.
  { group: '', resource: 'namespaces', verbs: ['get'], optional: true, why: 'doctor reads the namespace\'s Pod Security labels' },
]

/** Cluster-wide rules, all optional: the ClusterRole in container/rbac.yaml (except all-namespaces). */
export const CLUSTER_RULES: RbacRule[] = [
  { group: '', resource: 'nodes', verbs: ['get', 'list'], clusterScoped: true, optional: true, why: 'setup reports the node\'s architecture, doctor lists the architectures nodes have' },
  { group: 'storage.k8s.io', resource: 'storageclasses', verbs: ['list'], clusterScoped: true, optional: true, why: 'setup and doctor explain a store volume that does not bind' },
]

/** `status --all-namespaces` only; no file in container/ grants it (secrets in every namespace is a lot to ask). */
export const ALL_NAMESPACES_RULES: RbacRule[] = [
  { group: '', resource: 'pods', verbs: ['list'], clusterScoped: true, optional: true, why: 'status --all-namespaces' },
  { group: '', resource: 'persistentvolumeclaims', verbs: ['list'], clusterScoped: true, optional: true, why: 'status --all-namespaces' },
  { group: '', resource: 'secrets', verbs: ['list'], clusterScoped: true, optional: true, why: 'status --all-namespaces --json, for the signing keys' },
]

export const ALL_RULES: RbacRule[] = [...NAMESPACED_RULES, ...CLUSTER_RULES, ...ALL_NAMESPACES_RULES]

/** One question for a SelfSubjectAccessReview (authorization.k8s.io/v1 resourceAttributes). */
export interface AccessQuestion {
  rule: RbacRule
  verb: string
  resourceAttributes: { namespace?: string; verb: string; group: string; resource: string; subresource?: string; name?: string }
}

export function accessQuestions(namespace: string, rules: RbacRule[] = ALL_RULES): AccessQuestion[] {
  return rules.flatMap((rule) => {
    const [resource, subresource] = rule.resource.split('/')
    return rule.verbs.map((verb) => ({
      rule,
      verb,
      resourceAttributes: {
        ...(rule.clusterScoped ? {} : { namespace }),
        verb,
        group: rule.group,
        resource,
        ...(subresource ? { subresource } : {}),
        // Only its own namespace object is in reach of a Role.
        ...(resource === 'namespaces' ? { name: namespace } : {}),
      },
    }))
  })
}

export interface AccessAnswer {
  question: AccessQuestion
  /** Undefined when the review itself failed (error says why). */
  allowed?: boolean
  error?: string
}

/** "get, create on pods/exec (API group networking.k8s.io)" */
export function describeRight(resource: string, group: string, verbs: string[]): string {
  return `${verbs.map((v) => `"${v}"`).join(', ')} on ${resource}${group ? ` (API group ${group})` : ''}`
}

/** What a rule is about, in words: "pods/exec in namespace "x"", "nodes (cluster-wide)". */
function target(rule: RbacRule, namespace: string): string {
  if (rule.resource === 'namespaces') return `namespace "${namespace}" itself`
  if (ALL_NAMESPACES_RULES.includes(rule)) return `${rule.resource} in all namespaces (${rule.why})`
  return rule.clusterScoped ? `${rule.resource} (cluster-wide)` : `${rule.resource} in namespace "${namespace}"`
}

/** One finding per rule: pass when every verb is allowed, else the verbs missing and the fix. */
export function rbacFindings(answers: AccessAnswer[], namespace: string): Finding[] {
  const byRule = new Map<RbacRule, AccessAnswer[]>()
  for (const answer of answers) byRule.set(answer.question.rule, [...(byRule.get(answer.question.rule) ?? []), answer])
  return [...byRule].map(([rule, ruleAnswers]) => {
    const missing = ruleAnswers.filter((a) => a.allowed === false).map((a) => a.question.verb)
    const unknown = ruleAnswers.filter((a) => a.allowed === undefined)
    const subject = ALL_NAMESPACES_RULES.includes(rule) ? `${rule.resource} (all namespaces)` : `${rule.resource}${rule.clusterScoped ? ' (cluster-wide)' : ''}`
    const base = { check: 'rbac', subject, optional: rule.optional ?? false, why: rule.why }
    if (missing.length === 0 && unknown.length === 0) {
      return { ...base, status: 'pass', message: `may ${rule.verbs.join(', ')} ${target(rule, namespace)}` } satisfies Finding
    }
    if (missing.length === 0) {
      return {
        ...base,
        status: 'warn',
        message: `could not ask whether you may ${unknown.map((a) => a.question.verb).join(', ')} ${target(rule, namespace)}: ${unknown[0].error}`,
      } satisfies Finding
    }
    const file = ALL_NAMESPACES_RULES.includes(rule) ? undefined : rule.clusterScoped ? 'the ClusterRole trampoline-cluster-read in container/rbac.yaml' : 'the Role trampoline in container/rbac.yaml'
    return {
      ...base,
      status: rule.optional ? 'warn' : 'fail',
      missing,
      message: `may not ${missing.join(', ')} ${target(rule, namespace)}${rule.optional ? ' (optional)' : ''}${ALL_NAMESPACES_RULES.includes(rule) ? '' : `: ${rule.why}`}`,
      fix: `ask for ${rule.resource === 'namespaces' ? `"get" on namespace "${namespace}" itself` : `${describeRight(rule.resource, rule.group, missing)}${rule.clusterScoped ? ' cluster-wide' : ` in namespace "${namespace}"`}`}${file ? `; ${file} has it` : ''}`,
    } satisfies Finding
  })
}

/** The Role and ClusterRole names in container/rbac.yaml. */
export const ROLE_NAME = 'trampoline'
export const CLUSTER_ROLE_NAME = 'trampoline-cluster-read'

/** How a cluster admin grants everything at once (printed by doctor under missing rights). */
export function grantInstructions(namespace: string, rbacFile: string, username?: string, clusterRead = false): string[] {
  const user = username ?? 'YOUR-USER'
  const suffix = username ? username.replace(/[^a-z0-9-]+/gi, '-').replace(/^-+|-+$/g, '').toLowerCase() || 'user' : 'you'
  return [
    `To grant every right trampoline needs in namespace "${namespace}", a cluster admin runs:`,
    `  kubectl -n ${namespace} apply -f ${rbacFile}`,
    `  kubectl -n ${namespace} create rolebinding ${ROLE_NAME}-${suffix} --role=${ROLE_NAME} --user=${user}`,
    ...(clusterRead ? [`  kubectl create clusterrolebinding ${CLUSTER_ROLE_NAME}-${suffix} --clusterrole=${CLUSTER_ROLE_NAME} --user=${user}   # optional`] : []),
    `(or adds you to the group trampoline-users, which the file binds; its comments say more)`,
  ]
}
