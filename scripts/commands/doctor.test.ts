import { describe, expect, it } from 'vitest'
import { accessQuestions, rbacFindings } from '../preflight/rbac.ts'
import { nodeArchFinding, podSecurityFinding, verdict } from '../preflight/findings.ts'
import { humanReport, RBAC_FILE, type DoctorReport } from './doctor.ts'

function report(allowed: boolean): DoctorReport {
  const findings = [
    ...rbacFindings(accessQuestions('builds').map((question) => ({ question, allowed })), 'builds'),
    podSecurityFinding('builds', {}),
    nodeArchFinding({ unreadable: 'forbidden' }),
  ]
  const { ok, exitCode } = verdict(findings)
  return { context: 'dev', server: 'https://k:6443', namespace: 'builds', instance: 'x', user: { username: 'bob', groups: ['system:authenticated'] }, ok, exitCode, findings }
}

describe('humanReport', () => {
  it('says who we are where, and that all required checks pass', () => {
    const text = humanReport(report(true))
    expect(text.split('\n')[0]).toBe('cluster https://k:6443 (context dev), namespace builds, as bob (groups: system:authenticated)')
    expect(text).toMatch(/\nall required checks pass \(1 warning: optional\)$/)
    expect(text).not.toContain('kubectl')
  })

  it('ends a report of missing rights with the commands that grant them', () => {
    const r = report(false)
    expect(r.exitCode).toBe(4)
    const text = humanReport(r)
    expect(text).toContain('  FAIL  may not get, create pods/exec in namespace "builds"')
    expect(text).toContain(`  kubectl -n builds apply -f ${RBAC_FILE}`)
    expect(text).toContain('  kubectl -n builds create rolebinding trampoline-bob --role=trampoline --user=bob')
    expect(text).toContain('  kubectl create clusterrolebinding trampoline-cluster-read-bob --clusterrole=trampoline-cluster-read --user=bob   # optional')
    expect(text).toMatch(/\n9 problems, 7 warnings: trampoline will not work fully here until they are fixed$/)
    expect(RBAC_FILE).toMatch(/\/container\/rbac\.yaml$/)
  })
})
