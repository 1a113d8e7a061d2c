import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ExitCode, UserError } from '../errors.ts'
import { kubeconfigSources, mergeKubeconfigs, parseKubeconfig, readKubeconfigs, selectContext } from './kubeconfig.ts'

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kubeconfig-'))
}

/** A kubeconfig file from clusters/users/contexts given as name → body. */
function writeKubeconfig(path: string, spec: {
  clusters?: Record<string, object>
  users?: Record<string, object>
  contexts?: Record<string, object>
  current?: string
}): string {
  const list = (entries: Record<string, object> | undefined, field: string) =>
    Object.entries(entries ?? {}).map(([name, body]) => ({ name, [field]: body }))
  const document = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: list(spec.clusters, 'cluster'),
    users: list(spec.users, 'user'),
    contexts: list(spec.contexts, 'context'),
    ...(spec.current === undefined ? {} : { 'current-context': spec.current }),
  }
  writeFileSync(path, JSON.stringify(document, null, 2)) // JSON is YAML
  return path
}

function thrown(f: () => unknown): UserError {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    return error as UserError
  }
  throw new Error('expected a UserError')
}

describe('kubeconfigSources', () => {
  it('uses only --kubeconfig when given', () => {
    expect(kubeconfigSources('/x/config', { KUBECONFIG: '/a' }, '/home/u')).toEqual({ files: ['/x/config'], from: 'flag' })
  })

  it('splits $KUBECONFIG, dropping empty entries and repeats', () => {
    const env = { KUBECONFIG: ['/a', '', '/b', '/a', ''].join(delimiter) }
    expect(kubeconfigSources(undefined, env, '/home/u')).toEqual({ files: ['/a', '/b'], from: 'env' })
  })

  it('falls back to ~/.kube/config (an empty $KUBECONFIG counts as unset)', () => {
    expect(kubeconfigSources(undefined, { KUBECONFIG: '' }, '/home/u')).toEqual({ files: ['/home/u/.kube/config'], from: 'home' })
  })
})

describe('reading and merging like kubectl', () => {
  it('lets the first file to define a name win, as a whole entry, and takes current-context from the first file that sets one', () => {
    const dir = tempDir()
    const first = writeKubeconfig(join(dir, 'first'), {
      clusters: { shared: { server: 'https://first:6443' } },
      users: { shared: { token: 'first-token' } },
      contexts: { shared: { cluster: 'shared', user: 'shared', namespace: 'one' } },
    })
    const second = writeKubeconfig(join(dir, 'second'), {
      clusters: { shared: { server: 'https://second:6443', 'insecure-skip-tls-verify': true }, other: { server: 'https://other:6443' } },
      users: { shared: { token: 'second-token', username: 'not-merged' } },
      contexts: { shared: { cluster: 'other' }, extra: { cluster: 'other' } },
      current: 'shared',
    })
    const third = writeKubeconfig(join(dir, 'third'), { current: 'extra' })
    const merged = readKubeconfigs({ files: [first, second, third], from: 'env' })!
    expect(merged.files).toEqual([first, second, third])
    expect(merged.clusters.get('shared')).toEqual({ value: { server: 'https://first:6443' }, file: first })
    expect(merged.users.get('shared')!.value).toEqual({ token: 'first-token' })
    expect(merged.contexts.get('shared')!.value).toEqual({ cluster: 'shared', user: 'shared', namespace: 'one' })
    expect(merged.clusters.get('other')!.file).toBe(second)
    expect(merged.contexts.get('extra')!.file).toBe(second)
    expect(merged.currentContext).toEqual({ value: 'shared', file: second })
    const selection = selectContext(merged)
    expect(selection.contextName).toBe('shared')
    expect(selection.cluster.server).toBe('https://first:6443')
    expect(selection.user).toEqual({ token: 'first-token' })
  })

  it('does not fail on a name defined in two files (client-node\'s own merge does)', () => {
    const dir = tempDir()
    const a = writeKubeconfig(join(dir, 'a'), { clusters: { c: { server: 'https://a' } }, contexts: { x: { cluster: 'c' } }, current: 'x' })
    const b = writeKubeconfig(join(dir, 'b'), { clusters: { c: { server: 'https://b' } }, contexts: { x: { cluster: 'c' } } })
    expect(selectContext(readKubeconfigs({ files: [a, b], from: 'env' })!).cluster.server).toBe('https://a')
  })

  it('skips missing files in $KUBECONFIG and remembers them', () => {
    const dir = tempDir()
    const real = writeKubeconfig(join(dir, 'real'), { clusters: { c: { server: 'https://c' } }, contexts: { x: { cluster: 'c' } }, current: 'x' })
    const merged = readKubeconfigs({ files: [join(dir, 'gone'), real], from: 'env' })!
    expect(merged.files).toEqual([real])
    expect(merged.missing).toEqual([join(dir, 'gone')])
  })

  it('says so when no file in $KUBECONFIG exists', () => {
    const dir = tempDir()
    const error = thrown(() => readKubeconfigs({ files: [join(dir, 'a'), join(dir, 'b')], from: 'env' }))
    expect(error.message).toBe(`none of the kubeconfig files in $KUBECONFIG exists (${join(dir, 'a')}, ${join(dir, 'b')})`)
    expect(error.exitCode).toBe(ExitCode.cluster)
  })

  it('has nothing to say when ~/.kube/config does not exist (the caller may use in-cluster credentials)', () => {
    expect(readKubeconfigs({ files: [join(tempDir(), 'config')], from: 'home' })).toBeUndefined()
  })

  it('requires a file named by --kubeconfig to exist', () => {
    const path = join(tempDir(), 'nope')
    expect(thrown(() => readKubeconfigs({ files: [path], from: 'flag' })).message).toBe(`the kubeconfig ${path} (from --kubeconfig) does not exist`)
  })

  it('names the file that is not valid YAML', () => {
    const path = join(tempDir(), 'broken')
    writeFileSync(path, 'clusters: [\n')
    const error = thrown(() => readKubeconfigs({ files: [path], from: 'flag' }))
    expect(error.message).toContain(`kubeconfig ${path} is not valid`)
    expect(error.exitCode).toBe(ExitCode.cluster)
  })

  it('reads an empty file as an empty config, as kubectl does', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'empty'), '')
    const real = writeKubeconfig(join(dir, 'real'), { clusters: { c: { server: 'https://c' } }, contexts: { x: { cluster: 'c' } }, current: 'x' })
    expect(readKubeconfigs({ files: [join(dir, 'empty'), real], from: 'env' })!.currentContext!.value).toBe('x')
  })

  it('refuses a name defined twice in one file, as kubectl does', () => {
    const text = 'clusters:\n- name: c\n  cluster: {server: https://a}\n- name: c\n  cluster: {server: https://b}\n'
    expect(() => parseKubeconfig(text, '/k/config')).toThrow('clusters defines "c" twice')
  })
})

describe('relative paths', () => {
  it('resolve against the directory of the file that defines them', () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'sub'))
    const path = join(dir, 'sub', 'config')
    writeKubeconfig(path, {
      clusters: { c: { server: 'https://c', 'certificate-authority': 'ca.crt' }, abs: { server: 'https://d', 'certificate-authority': '/etc/ca.crt' } },
      users: {
        certs: { 'client-certificate': 'certs/me.crt', 'client-key': '../me.key', 'token-file': 'token' },
        local: { exec: { command: './bin/login', args: ['a'] } },
        onPath: { exec: { command: 'aws', args: ['eks', 'get-token'] } },
      },
    })
    const merged = readKubeconfigs({ files: [path], from: 'flag' })!
    expect(merged.clusters.get('c')!.value['certificate-authority']).toBe(join(dir, 'sub', 'ca.crt'))
    expect(merged.clusters.get('abs')!.value['certificate-authority']).toBe('/etc/ca.crt')
    const certs = merged.users.get('certs')!.value
    expect([certs['client-certificate'], certs['client-key'], certs['token-file']]).toEqual([join(dir, 'sub', 'certs', 'me.crt'), join(dir, 'me.key'), join(dir, 'sub', 'token')])
    expect(merged.users.get('local')!.value.exec).toEqual({ command: join(dir, 'sub', 'bin', 'login'), args: ['a'] })
    expect(merged.users.get('onPath')!.value.exec.command).toBe('aws')
  })

  it('each against its own file when merged', () => {
    const dir = tempDir()
    mkdirSync(join(dir, 'a'))
    mkdirSync(join(dir, 'b'))
    const a = writeKubeconfig(join(dir, 'a', 'config'), { clusters: { one: { server: 'https://1', 'certificate-authority': 'ca.crt' } } })
    const b = writeKubeconfig(join(dir, 'b', 'config'), { clusters: { two: { server: 'https://2', 'certificate-authority': 'ca.crt' } } })
    const merged = readKubeconfigs({ files: [a, b], from: 'env' })!
    expect(merged.clusters.get('one')!.value['certificate-authority']).toBe(join(dir, 'a', 'ca.crt'))
    expect(merged.clusters.get('two')!.value['certificate-authority']).toBe(join(dir, 'b', 'ca.crt'))
  })
})

describe('selectContext', () => {
  const file = (path: string, text: string) => parseKubeconfig(text, path)
  const base = file('/k/a', [
    'clusters: [{name: c, cluster: {server: "https://c"}}, {name: noserver, cluster: {}}]',
    'users: [{name: u, user: {token: t}}]',
    'contexts:',
    '- {name: good, context: {cluster: c, user: u}}',
    '- {name: anonymous, context: {cluster: c}}',
    '- {name: lost-cluster, context: {cluster: gone, user: u}}',
    '- {name: lost-user, context: {cluster: c, user: gone}}',
    '- {name: bad-cluster, context: {cluster: noserver}}',
  ].join('\n'))

  it('names a current-context that no file defines, with the file that set it and the known ones', () => {
    const merged = mergeKubeconfigs([base, file('/k/b', 'current-context: prod')])
    const error = thrown(() => selectContext(merged))
    expect(error.message).toBe('context "prod" (current-context in /k/b) is not defined in /k/a, /k/b (known contexts: good, anonymous, lost-cluster, lost-user, bad-cluster)')
    expect(error.exitCode).toBe(ExitCode.cluster)
  })

  it('names a --context that no file defines as a usage error', () => {
    const error = thrown(() => selectContext(mergeKubeconfigs([base]), 'prod'))
    expect(error.message).toMatch(/^context "prod" \(from --context\) is not defined in \/k\/a \(known contexts: good, /)
    expect(error.exitCode).toBe(ExitCode.usage)
  })

  it('--context wins over current-context', () => {
    expect(selectContext(mergeKubeconfigs([file('/k/x', 'current-context: lost-user'), base]), 'good').contextName).toBe('good')
  })

  it('says when no current-context is set, listing the contexts', () => {
    const error = thrown(() => selectContext(mergeKubeconfigs([base])))
    expect(error.message).toBe('the kubeconfig (/k/a) sets no current-context')
    expect(error.hint).toContain('known: good, anonymous')
  })

  it('names a missing cluster or user of the context, and a cluster without server', () => {
    const merged = mergeKubeconfigs([base])
    expect(thrown(() => selectContext(merged, 'lost-cluster')).message).toBe('cluster "gone" of context "lost-cluster" is not defined in /k/a (known clusters: c, noserver)')
    expect(thrown(() => selectContext(merged, 'lost-user')).message).toBe('user "gone" of context "lost-user" is not defined in /k/a (known users: u)')
    expect(thrown(() => selectContext(merged, 'bad-cluster')).message).toBe('cluster "noserver" (in /k/a) has no server')
  })

  it('accepts a context without a user', () => {
    const selection = selectContext(mergeKubeconfigs([base]), 'anonymous')
    expect(selection.userName).toBeUndefined()
    expect(selection.clusterName).toBe('c')
  })
})
