import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ApiException } from '@kubernetes/client-node'
import { describe, expect, it } from 'vitest'
import { ExitCode, UserError } from '../errors.ts'
import { apiStatus, defaultKubeconfigSource, explainApiError, isConflict, isNotFound, networkErrorCode } from './client.ts'

const cluster = { server: 'https://10.0.0.1:6443', namespace: 'builds', context: 'dev' }

function apiError(code: number, status: Record<string, unknown>): ApiException<string> {
  // client-node 2.x hands over the body as the raw JSON string.
  return new ApiException(code, 'request failed', JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, ...status }), {})
}

describe('defaultKubeconfigSource', () => {
  it('prefers $KUBECONFIG', () => {
    expect(defaultKubeconfigSource({ KUBECONFIG: '/a:/b' }, '/nonexistent')).toBe('KUBECONFIG=/a:/b')
  })

  it('falls back to ~/.kube/config when it exists', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'))
    mkdirSync(join(home, '.kube'))
    writeFileSync(join(home, '.kube', 'config'), 'apiVersion: v1\n')
    expect(defaultKubeconfigSource({}, home)).toBe(join(home, '.kube', 'config'))
  })

  it('is undefined when loadFromDefault would silently target localhost:8080', () => {
    const home = mkdtempSync(join(tmpdir(), 'home-'))
    expect(defaultKubeconfigSource({}, home)).toBeUndefined()
  })
})

describe('networkErrorCode', () => {
  it('finds the system error code in the cause chain fetch builds', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' })
    const error = new TypeError('fetch failed', { cause })
    expect(networkErrorCode(error)).toBe('ECONNREFUSED')
  })

  it('recognises TLS failures', () => {
    const cause = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' })
    expect(networkErrorCode(new Error('x', { cause }))).toBe('DEPTH_ZERO_SELF_SIGNED_CERT')
    expect(networkErrorCode(Object.assign(new Error('x'), { code: 'CERT_HAS_EXPIRED' }))).toBe('CERT_HAS_EXPIRED')
  })

  it('finds a code among the addresses an AggregateError tried', () => {
    const tried = [Object.assign(new Error('connect ETIMEDOUT ::1'), { code: 'ETIMEDOUT' })]
    const error = new TypeError('fetch failed', { cause: new AggregateError(tried, 'all failed') })
    expect(networkErrorCode(error)).toBe('ETIMEDOUT')
  })

  it('treats any other fetch failure as the network, naming its innermost cause', () => {
    expect(networkErrorCode(new TypeError('fetch failed', { cause: new Error('bad port') }))).toBe('bad port')
    expect(networkErrorCode(new TypeError('fetch failed'))).toBe('fetch failed')
    expect(explainApiError(new TypeError('fetch failed', { cause: new Error('bad port') }), cluster, 'list pods').message)
      .toBe('cannot reach the cluster at https://10.0.0.1:6443 (bad port) while trying to list pods')
  })

  it('ignores errors that are not about the network', () => {
    expect(networkErrorCode(Object.assign(new Error('x'), { code: 'ENOENT' }))).toBeUndefined()
    expect(networkErrorCode(undefined)).toBeUndefined()
  })
})

describe('apiStatus', () => {
  it('parses the JSON string body', () => {
    const error = apiError(404, { reason: 'NotFound', message: 'pods "trampoline-x" not found' })
    expect(apiStatus(error)).toEqual({ code: 404, reason: 'NotFound', message: 'pods "trampoline-x" not found' })
    expect(isNotFound(error)).toBe(true)
    expect(isConflict(error)).toBe(false)
  })

  it('keeps a body that is not JSON as the message', () => {
    expect(apiStatus(new ApiException(502, 'x', '<html>bad gateway</html>', {}))).toEqual({ code: 502, reason: undefined, message: '<html>bad gateway</html>' })
  })
})

describe('explainApiError', () => {
  it('says forbidden with the namespace and what rights to ask for', () => {
    const error = explainApiError(
      apiError(403, { reason: 'Forbidden', message: 'pods is forbidden: User "bob" cannot create resource "pods" in API group "" in the namespace "builds"' }),
      cluster,
      'create pod trampoline-x',
    ) as UserError
    expect(error).toBeInstanceOf(UserError)
    expect(error.exitCode).toBe(ExitCode.forbidden)
    expect(error.message).toContain('forbidden: cannot create pod trampoline-x in namespace "builds"')
    expect(error.message).toContain('User "bob"')
    expect(error.hint).toMatch(/RBAC/)
  })

  it('says the namespace is missing', () => {
    const error = explainApiError(apiError(404, { reason: 'NotFound', message: 'namespaces "builds" not found' }), cluster, 'create pod x') as UserError
    expect(error.message).toBe('namespace "builds" does not exist')
    expect(error.exitCode).toBe(ExitCode.notFound)
  })

  it('says the cluster is unreachable, with the server and context', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    const error = explainApiError(new TypeError('fetch failed', { cause }), cluster, 'list pods') as UserError
    expect(error.message).toBe('cannot reach the cluster at https://10.0.0.1:6443 (ECONNREFUSED) while trying to list pods')
    expect(error.hint).toContain('"dev"')
    expect(error.exitCode).toBe(ExitCode.cluster)
  })

  it('says credentials were rejected on 401', () => {
    const error = explainApiError(apiError(401, { reason: 'Unauthorized', message: 'Unauthorized' }), cluster, 'list pods') as UserError
    expect(error.exitCode).toBe(ExitCode.cluster)
    expect(error.message).toMatch(/rejected our credentials/)
  })

  it('passes on the server message for anything else', () => {
    const error = explainApiError(apiError(422, { reason: 'Invalid', message: 'Pod "x" is invalid: spec.containers[0].image: Required value' }), cluster, 'create pod x') as UserError
    expect(error.message).toBe('the cluster refused to create pod x: Pod "x" is invalid: spec.containers[0].image: Required value')
    expect(error.exitCode).toBe(ExitCode.failure)
  })

  it('leaves user errors and unrelated errors alone', () => {
    const user = new UserError('already explained')
    expect(explainApiError(user, cluster, 'x')).toBe(user)
    const bug = new RangeError('bug')
    expect(explainApiError(bug, cluster, 'x')).toBe(bug)
  })
})
