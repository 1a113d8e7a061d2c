import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { UserError } from '../errors.ts'
import { chooseKeySource, keyFingerprint, localReaders, normalizeKey, readApiKey, type KeyReaders } from './key.ts'

const KEY = 'sk-ant-api03-unit-test-key'

/** The error a call throws, for checking message, code and that the key is not in it. */
async function failure(run: () => unknown): Promise<UserError> {
  try {
    await run()
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    return error as UserError
  }
  throw new Error('expected a UserError')
}

describe('chooseKeySource', () => {
  it('takes an explicit option over the environment', () => {
    const env = { ANTHROPIC_API_KEY: KEY }
    expect(chooseKeySource({ apiKeyFile: '/k' }, env)).toEqual({ kind: 'file', path: '/k' })
    expect(chooseKeySource({ apiKeyHelper: 'pass show k' }, env)).toEqual({ kind: 'helper', command: 'pass show k' })
    expect(chooseKeySource({}, env)).toEqual({ kind: 'env', value: KEY })
  })

  it('finds no key in an empty or unset variable', () => {
    expect(chooseKeySource({}, {})).toBeUndefined()
    expect(chooseKeySource({}, { ANTHROPIC_API_KEY: '  ' })).toBeUndefined()
  })

  it('refuses two sources, and empty options, as usage errors', async () => {
    expect((await failure(() => chooseKeySource({ apiKeyFile: '/k', apiKeyHelper: 'x' }, {}))).exitCode).toBe(2)
    expect((await failure(() => chooseKeySource({ apiKeyFile: '' }, {}))).exitCode).toBe(2)
    expect((await failure(() => chooseKeySource({ apiKeyHelper: ' ' }, {}))).exitCode).toBe(2)
  })
})

describe('normalizeKey', () => {
  const env = { kind: 'env', value: '' } as const

  it('drops surrounding whitespace such as the newline a file ends with', () => {
    expect(normalizeKey(`  ${KEY}\n`, env)).toBe(KEY)
  })

  it('refuses empty and multi-part output without quoting it', async () => {
    expect((await failure(() => normalizeKey('\n', env))).exitCode).toBe(7)
    const twoLines = await failure(() => normalizeKey(`${KEY}\nsecond line`, { kind: 'helper', command: 'x' }))
    expect(twoLines.exitCode).toBe(7)
    expect(twoLines.message).toMatch(/--api-key-helper gave more than a key/)
    expect(twoLines.message).not.toContain(KEY)
    expect(twoLines.message).not.toContain('second line')
  })
})

describe('keyFingerprint', () => {
  it('is a short sha256 prefix, the same as sha256sum in the pod computes', () => {
    // printf %s sk-ant-api03-unit-test-key | sha256sum | cut -c1-16
    expect(keyFingerprint(KEY)).toBe('e5dd4ea70b8f288f')
    expect(keyFingerprint(KEY)).not.toBe(keyFingerprint(`${KEY}x`))
  })
})

describe('readApiKey', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trampoline-key-'))

  it('reads the environment, a file and a helper alike', async () => {
    const file = join(dir, 'key')
    writeFileSync(file, `${KEY}\n`)
    expect(await readApiKey({ kind: 'env', value: KEY })).toBe(KEY)
    expect(await readApiKey({ kind: 'file', path: file })).toBe(KEY)
    expect(await readApiKey({ kind: 'helper', command: `printf '%s\\n' ${KEY}` })).toBe(KEY)
  })

  it('says which file could not be read, as a local precondition', async () => {
    const error = await failure(() => readApiKey({ kind: 'file', path: join(dir, 'missing') }))
    expect(error.exitCode).toBe(7)
    expect(error.message).toBe(`cannot read --api-key-file ${join(dir, 'missing')} (ENOENT)`)
  })

  it('reports a failing helper by its exit code, without its output', async () => {
    const error = await failure(() => readApiKey({ kind: 'helper', command: `echo ${KEY}; exit 3` }))
    expect(error.exitCode).toBe(7)
    expect(error.message).toMatch(/exit 3/)
    expect(error.message).not.toContain(KEY)
  })

  it('gives the helper no stdin: the session keeps it', async () => {
    expect(await localReaders.runHelper('cat; printf k')).toEqual({ exitCode: 0, stdout: 'k' })
  })

  it('uses the readers it is given', async () => {
    const readers: KeyReaders = { readFile: async () => `${KEY}\n`, runHelper: async () => ({ exitCode: 0, stdout: '' }) }
    expect(await readApiKey({ kind: 'file', path: '/anywhere' }, readers)).toBe(KEY)
    expect((await failure(() => readApiKey({ kind: 'helper', command: 'x' }, readers))).message).toBe('--api-key-helper gave an empty API key')
  })
})
