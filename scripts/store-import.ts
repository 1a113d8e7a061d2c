// Local store paths into the pod without trusting the user container: the closure is
// exported from the local store (`nix-store --export`) and imported by root in the
// nix-daemon container, over exec, which then signs what it added with the instance key.
// Only the paths the pod lacks travel, and one exec both asks and imports; the stream has
// backpressure end to end.
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { PassThrough, Writable, type Readable } from 'node:stream'
import { $ } from 'zx'
import type { CommandContext } from './context.ts'
import { onInterrupt } from './cleanup.ts'
import { importMissingArgv, MISSING_LIST_END, runInDaemon } from './pod/daemon.ts'
import { ExitCode, UserError } from './errors.ts'
import type { ExecSession } from './kube/exec.ts'
import { NIX_FEATURES } from './local-nix.ts'
import { ByteProgress } from './progress.ts'

/** The closure of local store paths or installables (`nix path-info --recursive`). */
export async function localClosure(paths: string[]): Promise<string[]> {
  const result = await $({ nothrow: true, quiet: true })`nix ${NIX_FEATURES} path-info --recursive -- ${paths}`
  if (result.exitCode !== 0) {
    throw new UserError(`the local store does not have ${paths.length === 1 ? paths[0] : 'these paths'}: ${result.stderr.trim().split('\n').pop()}`, {
      hint: 'Build or fetch them locally first (nix build / nix-build), then copy.',
      exitCode: ExitCode.local,
    })
  }
  return result.stdout.split('\n').filter(Boolean)
}

export interface ImportResult {
  /** Paths in the closure. */
  closure: number
  /** Paths the pod lacked and received. */
  sent: number
  bytes: number
  seconds: number
}

/**
 * The import's stdout: the missing paths, one per line, up to MISSING_LIST_END (`list`
 * resolves to them); anything after goes to `rest`.
 */
export class MissingListReader extends Writable {
  readonly list: Promise<string[]>
  private resolveList!: (paths: string[]) => void
  private head = ''
  private done = false

  private readonly rest: NodeJS.WritableStream

  constructor(rest: NodeJS.WritableStream) {
    super()
    this.rest = rest
    this.list = new Promise((resolve) => (this.resolveList = resolve))
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.done) {
      this.rest.write(chunk)
      return callback()
    }
    this.head += chunk.toString('latin1')
    const end = this.head.indexOf(`${MISSING_LIST_END}\n`)
    if (end >= 0) {
      this.done = true
      this.resolveList(this.head.slice(0, end).split('\n').filter(Boolean))
      const after = this.head.slice(end + MISSING_LIST_END.length + 1)
      if (after) this.rest.write(Buffer.from(after, 'latin1'))
      this.head = ''
    }
    callback()
  }
}

/**
 * Send what the pod lacks of the paths' closures, in one exec in the daemon container that
 * opens while the closure is worked out here: it answers which paths it lacks, then
 * imports their export stream (IMPORT_MISSING_SCRIPT). `beside` runs once the local store
 * has them all, at the same time as the import (GC roots: a root may name a path before it
 * is valid), and the send waits for it.
 */
export async function sendClosure(context: CommandContext, paths: string[], report: boolean, options: { beside?: () => Promise<void> } = {}): Promise<ImportResult> {
  const stdin = new PassThrough()
  const answer = new MissingListReader(process.stderr)
  let session: ExecSession | undefined
  let exporter: ChildProcessByStdio<null, Readable, Readable> | undefined
  const kill = () => {
    if (exporter && exporter.exitCode === null && exporter.signalCode === null) exporter.kill()
  }
  const unregister = onInterrupt(() => {
    session?.abort()
    kill()
  })
  const progress = new ByteProgress({ label: 'copy', live: report ? undefined : false })
  progress.on('error', () => {})
  try {
    const running = runInDaemon(context, { command: importMissingArgv(), stdin, stdout: answer, stderr: process.stderr, onOpen: (open) => (session = open) })
    running.catch(() => {})
    const closure = await localClosure(paths).catch((error: unknown) => {
      stdin.destroy()
      session?.abort()
      throw error
    })
    const beside = options.beside?.()
    beside?.catch(() => {})
    stdin.write(`${closure.length}\n${closure.map((path) => `${path}\n`).join('')}`)
    const missing = await Promise.race([answer.list, running.then((code) => failedImport(code, 'checking which paths the pod has'))])
    if (!missing.length) {
      stdin.end()
      const code = await running
      if (code !== 0) failedImport(code, 'checking which paths the pod has')
      await beside
      return { closure: closure.length, sent: 0, bytes: 0, seconds: 0 }
    }

    const started = spawn('nix-store', ['--export', ...missing], { stdio: ['ignore', 'pipe', 'pipe'] })
    exporter = started
    let stderr = ''
    started.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)))
    const exported = new Promise<void>((resolve, reject) => {
      started.on('error', (error) => reject(new UserError(`cannot run nix-store: ${error.message}`, { exitCode: ExitCode.local })))
      started.on('close', (code, signal) =>
        code === 0 ? resolve() : reject(new UserError(`nix-store --export failed: ${stderr.trim() || signal || `exit ${code}`}`, { exitCode: ExitCode.local })),
      )
    })
    exported.catch(() => {})
    progress.phase(`sending ${missing.length} path(s)`)
    // A failed export must not look like a complete stream: then the connection breaks.
    started.stdout.pipe(progress, { end: false })
    exported.then(() => progress.end(), (error: Error) => progress.destroy(error))
    progress.pipe(stdin)
    progress.on('error', (error) => stdin.destroy(error))

    const exitCode = await running
    await exported
    await beside
    if (exitCode !== 0) failedImport(exitCode, 'importing into the pod\'s store')
    const { bytes, seconds } = progress.finish(report ? 'copied' : undefined)
    return { closure: closure.length, sent: missing.length, bytes, seconds }
  } finally {
    unregister()
    kill()
    progress.finish()
  }
}

function failedImport(exitCode: number, doing: string): never {
  throw new UserError(`${doing} failed (exit ${exitCode})`, {
    hint: 'See nix-store\'s message above; the pod\'s store keeps only complete paths.',
    exitCode: ExitCode.failure,
  })
}
