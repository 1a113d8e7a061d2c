import type { V1Node, V1StorageClass } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { ExitCode, UserError } from '../errors.ts'
import { pointAtDoctor } from './explain.ts'
import { admissionFinding, formatFindings, nodeArchFinding, podSecurityFinding, storageClassFinding, verdict, type Finding } from './findings.ts'

describe('podSecurityFinding', () => {
  it('passes without an enforce label or with privileged', () => {
    expect(podSecurityFinding('b', {}).status).toBe('pass')
    expect(podSecurityFinding('b', { 'pod-security.kubernetes.io/enforce': 'privileged', 'pod-security.kubernetes.io/warn': 'restricted' }).status).toBe('pass')
  })

  it('fails baseline and restricted, with the label command as the fix', () => {
    for (const level of ['baseline', 'restricted']) {
      const finding = podSecurityFinding('builds', { 'pod-security.kubernetes.io/enforce': level })
      expect(finding.status).toBe('fail')
      expect(finding.message).toBe(`namespace "builds" enforces Pod Security level "${level}", which forbids the privileged nix-daemon container`)
      expect(finding.fix).toContain('kubectl label namespace builds pod-security.kubernetes.io/enforce=privileged --overwrite')
    }
  })

  it('only warns when the labels cannot be read, and fails a namespace that does not exist', () => {
    const unknown = podSecurityFinding('builds', undefined, 'forbidden')
    expect(unknown.status).toBe('warn')
    expect(unknown.message).toContain('(forbidden)')
    const missing = podSecurityFinding('builds', undefined, undefined, true)
    expect(missing.status).toBe('fail')
    expect(missing.fix).toContain('kubectl create namespace builds')
  })
})

describe('admissionFinding', () => {
  it('passes an admitted dry run or an existing pod', () => {
    expect(admissionFinding('b', 'trampoline-x', { outcome: 'admitted' }).status).toBe('pass')
    expect(admissionFinding('b', 'trampoline-x', { outcome: 'exists' }).status).toBe('pass')
  })

  it('fails a Pod Security rejection (a cluster-wide default level, no label) with the fix', () => {
    const finding = admissionFinding('b', 'trampoline-x', { outcome: 'rejected', code: 403, message: 'pods "trampoline-x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "nix-daemon" must not set securityContext.privileged=true)' })
    expect(finding.status).toBe('fail')
    expect(finding.fix).toContain('pod-security.kubernetes.io/enforce=privileged')
  })

  it('fails quota and other refusals, warns when a webhook cannot dry-run, skips without create rights', () => {
    expect(admissionFinding('b', 'p', { outcome: 'rejected', code: 403, message: 'exceeded quota: q, requested: limits.cpu=4' }).fix).toMatch(/smaller pod/)
    expect(admissionFinding('b', 'p', { outcome: 'rejected', code: 400, message: 'admission webhook "x" does not support dry run' }).status).toBe('warn')
    const denied = admissionFinding('b', 'p', { outcome: 'rejected', code: 400, message: 'admission webhook "policy.example" denied the request: privileged containers are not allowed' })
    expect(denied.status).toBe('fail')
    expect(denied.message).toBe('admission rejects the pod (HTTP 400): admission webhook "policy.example" denied the request: privileged containers are not allowed')
    expect(admissionFinding('b', 'p', { outcome: 'skipped', why: 'you may not create pods' }).status).toBe('warn')
  })
})

const storageClass = (name: string, isDefault = false): V1StorageClass => ({
  metadata: { name, annotations: isDefault ? { 'storageclass.kubernetes.io/is-default-class': 'true' } : {} },
  provisioner: `${name}.csi.example.com`,
})

describe('storageClassFinding', () => {
  it('passes with a default class', () => {
    const finding = storageClassFinding({ classes: [storageClass('slow'), storageClass('standard', true)] })
    expect(finding.status).toBe('pass')
    expect(finding.message).toBe('default StorageClass "standard" (provisioner standard.csi.example.com)')
  })

  it('fails without a default, naming the classes there are and --storage-class', () => {
    const finding = storageClassFinding({ classes: [storageClass('fast'), storageClass('slow')] })
    expect(finding.status).toBe('fail')
    expect(finding.message).toBe('the cluster has no default StorageClass (it has: fast, slow), so a store volume without --storage-class never binds')
    expect(finding.fix).toMatch(/^pass --storage-class with one of: fast, slow, or ask your cluster admin to mark one default/)
    expect(storageClassFinding({ classes: [] }).fix).toMatch(/StorageClass with a provisioner/)
  })

  it('checks --storage-class instead, when given', () => {
    expect(storageClassFinding({ classes: [storageClass('fast')], requested: 'fast' }).status).toBe('pass')
    const missing = storageClassFinding({ classes: [storageClass('fast'), storageClass('standard', true)], requested: 'ssd' })
    expect(missing.status).toBe('fail')
    expect(missing.message).toBe('StorageClass "ssd" does not exist (the cluster has: fast, standard)')
    expect(missing.fix).toBe('pass --storage-class with one of: fast, standard')
  })

  it('passes a store volume that is bound already, whatever the classes', () => {
    expect(storageClassFinding({ classes: [], pvc: { name: 'trampoline-x', phase: 'Bound', storageClassName: 'old' } }).status).toBe('pass')
  })

  it('checks the class a pending store volume asks for', () => {
    const finding = storageClassFinding({ classes: [storageClass('standard', true)], pvc: { name: 'trampoline-x', phase: 'Pending', storageClassName: 'gone' } })
    expect(finding.status).toBe('fail')
    expect(finding.fix).toMatch(/^the store volume trampoline-x asks for it: trampoline clean/)
  })

  it('only warns when StorageClasses cannot be listed (an optional right)', () => {
    const finding = storageClassFinding({ unreadable: 'forbidden' })
    expect(finding.status).toBe('warn')
    expect(finding.message).toBe('cannot list StorageClasses (forbidden): whether a default one exists is unknown')
  })
})

const node = (name: string, arch: string, options: { ready?: boolean; cordoned?: boolean } = {}): V1Node => ({
  metadata: { name, labels: { 'kubernetes.io/arch': arch } },
  spec: { unschedulable: options.cordoned },
  status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] },
})

describe('nodeArchFinding', () => {
  const nodes = [node('a1', 'amd64'), node('a2', 'amd64', { cordoned: true }), node('r1', 'arm64', { ready: false })]

  it('passes when a ready, schedulable node has the arch', () => {
    const finding = nodeArchFinding({ nodes, arch: 'amd64' })
    expect(finding.status).toBe('pass')
    expect(finding.message).toBe('1 ready node with arch amd64 (the cluster has: amd64 (1 of 2 nodes ready), arm64 (0 of 1 nodes ready))')
  })

  it('fails an arch with no usable node, listing the arches the cluster has and what to pass', () => {
    const finding = nodeArchFinding({ nodes, arch: 'arm64' })
    expect(finding.status).toBe('fail')
    expect(finding.message).toBe('no ready node has arch arm64 (the cluster has: amd64 (1 of 2 nodes ready), arm64 (0 of 1 nodes ready))')
    expect(finding.fix).toBe('use --arch amd64, or --arch any; or ask for arm64 nodes')
    expect(nodeArchFinding({ nodes, arch: 's390x' }).status).toBe('fail')
  })

  it('without --arch, lists the arches', () => {
    expect(nodeArchFinding({ nodes: [node('a', 'amd64'), node('b', 'arm64')] }).message).toBe('ready nodes: amd64 (1 node), arm64 (1 node); setup --arch picks one of them')
    expect(nodeArchFinding({ nodes: [node('r1', 'arm64', { ready: false })] }).status).toBe('fail')
  })

  it('only warns when nodes cannot be listed (an optional right)', () => {
    expect(nodeArchFinding({ unreadable: 'forbidden', arch: 'arm64' })).toMatchObject({ status: 'warn', message: 'cannot list nodes (forbidden): whether arm64 nodes can take the pod is unknown' })
  })
})

describe('verdict and report', () => {
  const pass: Finding = { check: 'node-arch', subject: 'nodes', status: 'pass', optional: false, message: 'fine' }
  const warn: Finding = { check: 'storage-class', subject: 's', status: 'warn', optional: true, message: 'unknown', fix: 'optional right' }
  const rbac: Finding = { check: 'rbac', subject: 'pods/exec', status: 'fail', optional: false, message: 'may not create pods/exec', fix: 'ask for it' }
  const psa: Finding = { check: 'pod-security', subject: 'namespace b', status: 'fail', optional: false, message: 'baseline', fix: 'label it' }

  it('exit 0 with warnings only, 4 when a right is missing, 6 for anything else', () => {
    expect(verdict([pass, warn])).toMatchObject({ ok: true, exitCode: 0 })
    expect(verdict([pass, psa, rbac])).toMatchObject({ ok: false, exitCode: ExitCode.forbidden })
    expect(verdict([pass, psa])).toMatchObject({ ok: false, exitCode: ExitCode.podFailed })
  })

  it('prints each finding under its check, problems with their fix', () => {
    expect(formatFindings([rbac, psa, warn, pass])).toBe([
      'Rights (RBAC, via SelfSubjectAccessReview)',
      '  FAIL  may not create pods/exec',
      '        fix: ask for it',
      '',
      'Pod Security',
      '  FAIL  baseline',
      '        fix: label it',
      '',
      'Store volume',
      '  warn  unknown',
      '        fix: optional right',
      '',
      'Nodes',
      '  ok    fine',
    ].join('\n'))
  })
})

describe('pointAtDoctor (setup failures)', () => {
  it('adds the doctor hint to unschedulable, unbound-volume and admission failures', () => {
    for (const message of [
      'pod trampoline-x: the pod cannot be scheduled: 0/3 nodes are available: 3 node(s) didn\'t match Pod\'s node affinity/selector.',
      'pod trampoline-x: the store volume trampoline-x cannot bind: it names no StorageClass and the cluster has no default one',
      'pod trampoline-x: not ready after 600s, still binding the store volume',
      'namespace "b" does not allow the pod: pods "x" is forbidden: violates PodSecurity "baseline:latest"',
    ]) {
      const error = pointAtDoctor(new UserError(message, { hint: 'first hint', exitCode: ExitCode.podFailed })) as UserError
      expect(error.message).toBe(message)
      expect(error.exitCode).toBe(ExitCode.podFailed)
      expect(error.hint).toMatch(/^first hint\n {2}trampoline doctor checks what this cluster/)
    }
  })

  it('adds it to RBAC refusals that do not mention it yet', () => {
    const error = pointAtDoctor(new UserError('forbidden: cannot create pod x', { exitCode: ExitCode.forbidden })) as UserError
    expect(error.hint).toMatch(/^trampoline doctor checks/)
    const already = new UserError('forbidden', { hint: 'see trampoline doctor', exitCode: ExitCode.forbidden })
    expect(pointAtDoctor(already)).toBe(already)
  })

  it('leaves other failures alone', () => {
    const image = new UserError('pod x: cannot pull image y', { exitCode: ExitCode.podFailed })
    expect(pointAtDoctor(image)).toBe(image)
    const bug = new TypeError('x')
    expect(pointAtDoctor(bug)).toBe(bug)
  })
})
