// Where the Anthropic API key comes from on this machine: --api-key-file, --api-key-helper
// (a local command whose stdout is the key, like Claude Code's own apiKeyHelper), or
// $ANTHROPIC_API_KEY. An explicit option wins over the environment; with none of them the
// key already stored in the cluster serves. No message ever contains the key.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { constants } from 'node:os'
import { readFile } from 'node:fs/promises'
import { ExitCode, UserError } from '../errors.ts'

export const API_KEY_ENV = 'ANTHROPIC_API_KEY'
/** More than any API key; a helper printing more is printing something else. */
const MAX_KEY_BYTES = 16 * 1024

export type KeySource =
  | { kind: 'file'; path: string }
  | { kind: 'helper'; command: string }
  | { kind: 'env'; value: string }

export interface KeyOptions {
  apiKeyFile?: string
  apiKeyHelper?: string
}

/** The source to read, or undefined when this machine offers no key. */
export function chooseKeySource(options: KeyOptions, env: NodeJS.ProcessEnv = process.env): KeySource | undefined {
  if (options.apiKeyFile !== undefined && options.apiKeyHelper !== undefined) {
    throw new UserError('--api-key-file and --api-key-helper are two sources for one key: pass one of them', { exitCode: ExitCode.usage })
  }
  if (options.apiKeyFile !== undefined) {
    if (!options.apiKeyFile.trim()) throw new UserError('--api-key-file needs a path', { exitCode: ExitCode.usage })
    return { kind: 'file', path: options.apiKeyFile }
  }
  if (options.apiKeyHelper !== undefined) {
    if (!options.apiKeyHelper.trim()) throw new UserError('--api-key-helper needs a command', { exitCode: ExitCode.usage })
    return { kind: 'helper', command: options.apiKeyHelper }
  }
  const value = env[API_KEY_ENV]
  return value?.trim() ? { kind: 'env', value } : undefined
}

export function describeKeySource(source: KeySource): string {
  switch (source.kind) {
    case 'file':
      return `--api-key-file ${source.path}`
    case 'helper':
      return '--api-key-helper'
    case 'env':
      return `$${API_KEY_ENV}`
  }
}

/** The key alone: surrounding whitespace (a trailing newline) dropped, nothing else allowed. */
export function normalizeKey(raw: string, source: KeySource): string {
  const key = raw.trim()
  const from = describeKeySource(source)
  if (!key) throw new UserError(`${from} gave an empty API key`, { exitCode: ExitCode.local })
  // Say what is wrong without quoting any of it: it may be the key.
  if (/[\s\u0000-\u001f\u007f]/.test(key)) {
    throw new UserError(`${from} gave more than a key (whitespace or several lines); it must give the key alone`, { exitCode: ExitCode.local })
  }
  return key
}

/** A short digest that identifies a key without revealing it: how the pod checks it has the right one. */
export function keyFingerprint(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 16)
}

export interface KeyReaders {
  readFile(path: string): Promise<string>
  /** Run a command locally; its stdout is the key, its stderr goes to ours. */
  runHelper(command: string): Promise<{ exitCode: number; stdout: string }>
}

export async function readApiKey(source: KeySource, readers: KeyReaders = localReaders): Promise<string> {
  switch (source.kind) {
    case 'env':
      return normalizeKey(source.value, source)
    case 'file': {
      let text: string
      try {
        text = await readers.readFile(source.path)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
        throw new UserError(`cannot read --api-key-file ${source.path} (${code})`, { exitCode: ExitCode.local, cause: error })
      }
      return normalizeKey(text, source)
    }
    case 'helper': {
      const result = await readers.runHelper(source.command)
      if (result.exitCode !== 0) {
        throw new UserError(`the --api-key-helper command failed (exit ${result.exitCode}); its own messages are above`, { exitCode: ExitCode.local })
      }
      return normalizeKey(result.stdout, source)
    }
  }
}

export const localReaders: KeyReaders = {
  readFile: async (path) => {
    const buffer = await readFile(path)
    if (buffer.length > MAX_KEY_BYTES) throw new UserError(`--api-key-file ${path} is too big to hold an API key`, { exitCode: ExitCode.local })
    return buffer.toString('utf8')
  },
  runHelper: (command) =>
    new Promise((resolve, reject) => {
      // No stdin: the session's input must stay ours (password managers prompt on /dev/tty).
      const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'inherit'] })
      const chunks: Buffer[] = []
      let size = 0
      child.stdout.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size <= MAX_KEY_BYTES) chunks.push(chunk)
      })
      child.on('error', (error) =>
        reject(new UserError(`cannot run the --api-key-helper command: ${error.message}`, { exitCode: ExitCode.local, cause: error })),
      )
      child.on('close', (code, signal) => {
        if (size > MAX_KEY_BYTES) {
          reject(new UserError('the --api-key-helper command printed far more than an API key', { exitCode: ExitCode.local }))
          return
        }
        resolve({ exitCode: code ?? 128 + (signal ? (constants.signals[signal] ?? 1) : 1), stdout: Buffer.concat(chunks).toString('utf8') })
      })
    }),
}
