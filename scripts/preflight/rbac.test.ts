import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { describe, expect, it } from 'vitest'
import { containerDir } from '../manifests/template.ts'
import { accessQuestions, ALL_RULES, CLUSTER_RULES, grantInstructions, NAMESPACED_RULES, rbacFindings, type AccessAnswer, type RbacRule } from './rbac.ts'

const SCRIPTS = fileURLToPath(new URL('..', import.meta.url))

/** "group/resource verb" for every verb of every rule. */
function expand(rules: Array<{ apiGroups?: string[]; group?: string; resources?: string[]; resource?: string; verbs: string[] }>): string[] {
  const out = new Set<string>()
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? [rule.group ?? '']) {
      for (const resource of rule.resources ?? [rule.resource!]) {
        for (const verb of rule.verbs) out.add(`${group}/${resource} ${verb}`)
      }
    }
  }
  return [...out].sort()
}

function rbacDocuments(): Array<Record<string, any>> {
  return parseAllDocuments(readFileSync(join(containerDir(), 'rbac.yaml'), 'utf8')).map((d) => d.toJS())
}

describe('container/rbac.yaml', () => {
  const documents = rbacDocuments()
  const byKind = (kind: string) => documents.filter((d) => d.kind === kind)

  it('has a Role granting exactly the namespaced rules, nothing more', () => {
    const [role] = byKind('Role')
    expect(role.metadata.name).toBe('trampoline')
    expect(role.metadata.namespace).toBeUndefined() // -n decides
    expect(expand(role.rules)).toEqual(expand(NAMESPACED_RULES))
  })

  it('has a ClusterRole granting exactly the optional cluster-wide reads', () => {
    const [clusterRole] = byKind('ClusterRole')
    expect(clusterRole.metadata.name).toBe('trampoline-cluster-read')
    expect(expand(clusterRole.rules)).toEqual(expand(CLUSTER_RULES))
    expect(clusterRole.rules.flatMap((r: { verbs: string[] }) => r.verbs).every((v: string) => ['get', 'list'].includes(v))).toBe(true)
  })

  it('binds both to the placeholder group', () => {
    const [binding] = byKind('RoleBinding')
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'trampoline' })
    expect(binding.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'trampoline-users' }])
    const [clusterBinding] = byKind('ClusterRoleBinding')
    expect(clusterBinding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'trampoline-cluster-read' })
    expect(clusterBinding.subjects).toEqual(binding.subjects)
  })
})

// Every API call in scripts/ must be covered by a rule, or a new feature silently needs
// a right that container/rbac.yaml and doctor do not know about.
describe('the rules cover every API call the CLI makes', () => {
  const GROUPS: Record<string, string> = { core: '', networking: 'networking.k8s.io', StorageV1Api: 'storage.k8s.io', CoreV1Api: '', NetworkingV1Api: 'networking.k8s.io' }
  const VERBS: Record<string, string> = { read: 'get', list: 'list', create: 'create', delete: 'delete', patch: 'patch', replace: 'update' }
  // Granted to every authenticated user (ClusterRole system:basic-user).
  const EVERYONE = new Set(['authentication.k8s.io/selfsubjectreviews create', 'authorization.k8s.io/selfsubjectaccessreviews create'])

  const plural = (kind: string) => {
    const lower = kind.toLowerCase()
    return lower.endsWith('y') ? `${lower.slice(0, -1)}ies` : lower.endsWith('s') ? `${lower}es` : `${lower}s`
  }

  /** `readNamespacedPodLog` -> pods/log get (namespaced); `listNode` -> nodes list (cluster). */
  function right(api: string, method: string): { key: string; clusterScoped: boolean } {
    if (method === 'createSelfSubjectReview') return { key: 'authentication.k8s.io/selfsubjectreviews create', clusterScoped: true }
    if (method === 'createSelfSubjectAccessReview') return { key: 'authorization.k8s.io/selfsubjectaccessreviews create', clusterScoped: true }
    const match = /^(read|list|create|delete|patch|replace)(Namespaced)?([A-Z]\w*?)(ForAllNamespaces)?$/.exec(method)
    if (!match) throw new Error(`cannot tell which right ${api}.${method} needs: teach this test`)
    const [, action, namespaced, kind, allNamespaces] = match
    const resource = kind === 'PodLog' ? 'pods/log' : plural(kind)
    const clusterScoped = !!allNamespaces || (!namespaced && resource !== 'namespaces')
    return { key: `${GROUPS[api]}/${resource} ${VERBS[action]}`, clusterScoped }
  }

  function sources(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const path = join(dir, name)
      if (statSync(path).isDirectory()) return name === 'bench' || name === 'local-cluster' ? [] : sources(path)
      return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : []
    })
  }

  const calls: Array<{ file: string; api: string; method: string }> = []
  const streams: Array<{ file: string; key: string }> = []
  for (const file of sources(SCRIPTS)) {
    const text = readFileSync(file, 'utf8')
    const where = relative(SCRIPTS, file)
    for (const m of text.matchAll(/\.(core|networking)\s*\.\s*(\w+)\s*\(/g)) calls.push({ file: where, api: m[1], method: m[2] })
    for (const m of text.matchAll(/makeApiClient\((\w+)\)\s*\.\s*(\w+)\s*\(/g)) calls.push({ file: where, api: m[1], method: m[2] })
    for (const m of text.matchAll(/makeApiClient\((\w+)\)\s*$/gm)) calls.push({ file: where, api: m[1], method: '' })
    // Websocket streams (GET upgrades: "get"; 1.35+ also "create") and watches.
    if (/\/exec\?/.test(text)) streams.push({ file: where, key: '/pods/exec get' }, { file: where, key: '/pods/exec create' })
    if (/\/portforward\?/.test(text)) streams.push({ file: where, key: '/pods/portforward get' }, { file: where, key: '/pods/portforward create' })
    for (const m of text.matchAll(/new Watch\([^)]*\)\s*\.watch\(\s*`\/api\/v1\/namespaces\/[^`]*\/(\w+)`/g)) streams.push({ file: where, key: `/${m[1]} watch` })
  }

  const granted = (clusterScoped: boolean) => new Set(expand(ALL_RULES.filter((r) => !!r.clusterScoped === clusterScoped)))

  it('finds the calls it checks (the scan works)', () => {
    expect(calls.some((c) => c.method === 'createNamespacedPod')).toBe(true)
    expect(calls.some((c) => c.method === 'replaceNamespacedSecret')).toBe(true)
    expect(streams.map((s) => s.key)).toEqual(expect.arrayContaining(['/pods/exec get', '/pods/portforward create', '/pods watch']))
  })

  it('every client-node call', () => {
    const uncovered = calls
      .filter((c) => c.method !== '') // makeApiClient(X) kept for a later call: the AuthorizationV1Api review
      .map((c) => ({ ...c, ...right(c.api, c.method) }))
      .filter((c) => !EVERYONE.has(c.key) && !granted(c.clusterScoped).has(c.key))
      .map((c) => `${c.file}: ${c.api}.${c.method} needs ${c.key}${c.clusterScoped ? ' (cluster-wide)' : ''}`)
    expect(uncovered).toEqual([])
  })

  it('and nothing more: every right granted is used by some call or stream', () => {
    const used = new Set([
      ...calls.filter((c) => c.method !== '').map((c) => right(c.api, c.method).key),
      ...streams.map((s) => s.key),
    ])
    expect(expand(ALL_RULES).filter((key) => !used.has(key))).toEqual([])
  })

  it('every exec, port-forward and watch stream', () => {
    const uncovered = streams.filter((s) => !granted(false).has(s.key)).map((s) => `${s.file}: ${s.key}`)
    expect(uncovered).toEqual([])
  })
})

describe('accessQuestions', () => {
  const questions = accessQuestions('builds')

  it('asks about every verb of every rule', () => {
    expect(questions.length).toBe(ALL_RULES.reduce((n, r) => n + r.verbs.length, 0))
  })

  it('splits subresources and scopes the questions', () => {
    const exec = questions.find((q) => q.rule.resource === 'pods/exec' && q.verb === 'create')!
    expect(exec.resourceAttributes).toEqual({ namespace: 'builds', verb: 'create', group: '', resource: 'pods', subresource: 'exec' })
    const nodes = questions.find((q) => q.rule.resource === 'nodes' && q.verb === 'list')!
    expect(nodes.resourceAttributes).toEqual({ verb: 'list', group: '', resource: 'nodes' })
    const ns = questions.find((q) => q.rule.resource === 'namespaces')!
    expect(ns.resourceAttributes).toEqual({ namespace: 'builds', verb: 'get', group: '', resource: 'namespaces', name: 'builds' })
    const netpol = questions.find((q) => q.rule.resource === 'networkpolicies' && q.verb === 'delete')!
    expect(netpol.resourceAttributes.group).toBe('networking.k8s.io')
  })
})

describe('rbacFindings', () => {
  const answer = (allowed: (rule: RbacRule, verb: string) => boolean | undefined): AccessAnswer[] =>
    accessQuestions('builds').map((question) => {
      const result = allowed(question.rule, question.verb)
      return result === undefined ? { question, error: 'HTTP 500' } : { question, allowed: result }
    })

  it('passes every rule when everything is allowed', () => {
    const findings = rbacFindings(answer(() => true), 'builds')
    expect(findings).toHaveLength(ALL_RULES.length)
    expect(findings.every((f) => f.status === 'pass' && !f.fix)).toBe(true)
    expect(findings[0].message).toBe('may get, list, watch, create, delete pods in namespace "builds"')
  })

  it('names the verbs missing, with the fix, failing required rules and warning about optional ones', () => {
    const findings = rbacFindings(answer((rule, verb) => !(rule.resource === 'pods/exec' && verb === 'create') && rule.resource !== 'nodes'), 'builds')
    const exec = findings.find((f) => f.subject === 'pods/exec')!
    expect(exec.status).toBe('fail')
    expect(exec.missing).toEqual(['create'])
    expect(exec.message).toMatch(/^may not create pods\/exec in namespace "builds": push-tarball, build/)
    expect(exec.fix).toBe('ask for "create" on pods/exec in namespace "builds"; the Role trampoline in container/rbac.yaml has it')
    const nodes = findings.find((f) => f.subject === 'nodes (cluster-wide)')!
    expect(nodes.status).toBe('warn')
    expect(nodes.missing).toEqual(['get', 'list'])
    expect(nodes.fix).toBe('ask for "get", "list" on nodes cluster-wide; the ClusterRole trampoline-cluster-read in container/rbac.yaml has it')
  })

  it('a user with no rights at all fails every required rule', () => {
    const findings = rbacFindings(answer(() => false), 'builds')
    expect(findings.filter((f) => f.status === 'fail').map((f) => f.subject)).toEqual(NAMESPACED_RULES.filter((r) => !r.optional).map((r) => r.resource))
    const netpol = findings.find((f) => f.subject === 'networkpolicies')!
    expect(netpol.fix).toBe('ask for "get", "list", "create", "update", "delete" on networkpolicies (API group networking.k8s.io) in namespace "builds"; the Role trampoline in container/rbac.yaml has it')
    const allNs = findings.find((f) => f.subject === 'secrets (all namespaces)')!
    expect(allNs.status).toBe('warn')
    expect(allNs.fix).toBe('ask for "list" on secrets cluster-wide')
  })

  it('warns when a review could not be made', () => {
    const findings = rbacFindings(answer((rule) => (rule.resource === 'events' ? undefined : true)), 'builds')
    const events = findings.find((f) => f.subject === 'events')!
    expect(events.status).toBe('warn')
    expect(events.message).toBe('could not ask whether you may list events in namespace "builds": HTTP 500')
  })
})

describe('grantInstructions', () => {
  it('names the file, the namespace and the user', () => {
    expect(grantInstructions('builds', '/opt/t/container/rbac.yaml', 'alice@example.com', true)).toEqual([
      'To grant every right trampoline needs in namespace "builds", a cluster admin runs:',
      '  kubectl -n builds apply -f /opt/t/container/rbac.yaml',
      '  kubectl -n builds create rolebinding trampoline-alice-example-com --role=trampoline --user=alice@example.com',
      '  kubectl create clusterrolebinding trampoline-cluster-read-alice-example-com --clusterrole=trampoline-cluster-read --user=alice@example.com   # optional',
      '(or adds you to the group trampoline-users, which the file binds; its comments say more)',
    ])
  })
})
