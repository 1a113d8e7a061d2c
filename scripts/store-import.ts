// Local store paths into the pod without trusting the user container: root in the
// nix-daemon container takes them in and then signs what it added with the instance key.
// Only the paths the pod lacks travel, and one exec both asks and takes them in: a root
// `nix-daemon --stdio` there for the local `nix copy --to`, over the exec store's FIFO
// bridge (exec-store/bridge.ts), which writes each path as it streams in. Where the
// system has no FIFOs, a `nix-store --export` stream for `nix-store --import`, which holds
// each whole path in memory first. Either way the stream has backpressure end to end.
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { PassThrough, Writable, type Readable } from 'node:stream'
import { $ } from 'zx'
import type { CommandContext } from './context.ts'
import { onInterrupt } from './cleanup.ts'
import { importMissingArgv, MISSING_LIST_END, runInDaemon } from './pod/daemon.ts'
import { ExitCode, UserError } from './errors.ts'
import type { ExecSession } from './kube/exec.ts'
import { NIX_FEATURES, runNix } from './local-nix.ts'
import { ByteProgress } from './progress.ts'
import { execStoreTarget, withExecStore, type ExecStore } from './exec-store/shim.ts'
import type { FifoBridge } from './exec-store/bridge.ts'

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
      if (this.rest.write(chunk)) callback()
      else this.rest.once('drain', () => callback())
      return
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
 * opens while the closure is worked out here: it answers which paths it lacks, then takes
 * them in (IMPORT_MISSING_SCRIPT). `beside` runs once the local store has them all, at the
 * same time as the copy (GC roots: a root may name a path before it is valid), and the
 * send waits for it.
 */
export function sendClosure(context: CommandContext, paths: string[], report: boolean, options: { beside?: () => Promise<void> } = {}): Promise<ImportResult> {
  return withExecStore(execStoreTarget(context), 'ssh-ng', (store) => sendOver(context, store, paths, report, options), { bridged: true })
}

async function sendOver(context: CommandContext, store: ExecStore, paths: string[], report: boolean, options: { beside?: () => Promise<void> }): Promise<ImportResult> {
  const bridge = store.bridge
  const stdin = new PassThrough()
  // After the answer, the pod's stdout is its nix-daemon's, for the local Nix.
  const answer = new MissingListReader(bridge ? bridge.toNix : process.stderr)
  let session: ExecSession | undefined
  let exporter: ChildProcessByStdio<null, Readable, Readable> | undefined
  const kill = () => {
    if (exporter && exporter.exitCode === null && exporter.signalCode === null) exporter.kill()
  }
  // Stops the local Nix when the exec ended under it (the connection broke), or on Ctrl-C
  // before the exec is cut: Nix would only add its broken pipes to our message.
  const execEnded = new AbortController()
  const unregister = onInterrupt(() => {
    execEnded.abort()
    session?.abort()
    kill()
  })
  const progress = new ByteProgress({ label: 'copy', live: report ? undefined : false })
  progress.on('error', () => {})
  try {
    const running = runInDaemon(context, { command: importMissingArgv(bridge ? 'daemon' : 'export'), stdin, stdout: answer, stderr: process.stderr, onOpen: (open) => (session = open) })
    running.then(
      () => execEnded.abort(),
      () => execEnded.abort(),
    )
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

    progress.phase(`sending ${missing.length} path(s)`)
    progress.pipe(stdin)
    progress.on('error', (error) => stdin.destroy(error))
    const sent = bridge
      ? copyThroughDaemon(store, bridge, missing, progress, execEnded.signal)
      : exportInto(missing, progress, (started) => (exporter = started))
    const failed = await sent.then(
      () => undefined,
      (error: unknown) => ({ error }),
    )
    // A lost connection says more than the local side's "unexpected end of file".
    const exitCode = await running
    await beside
    if (failed) throw failed.error
    if (exitCode !== 0) failedImport(exitCode, 'importing into the pod\'s store')
    const { bytes, seconds } = progress.finish(report ? 'copied' : undefined)
    return { closure: closure.length, sent: missing.length, bytes, seconds }
  } finally {
    unregister()
    kill()
    progress.finish()
  }
}

/**
 * The local `nix copy --to` the exec store, whose first connection (the bridge) is the pod's
 * root nix-daemon: unsigned local paths are fine (it trusts its stdio, as nix-store
 * --import would). What Nix sends goes through `progress` to the exec; the stream ends
 * when Nix does, so the pod's daemon ends and the pod signs what arrived.
 */
async function copyThroughDaemon(store: ExecStore, bridge: FifoBridge, missing: string[], progress: ByteProgress, signal: AbortSignal): Promise<void> {
  bridge.fromNix.pipe(progress, { end: false })
  try {
    // --quiet and raw logs: Nix's own lines and bar would draw over our progress.
    await runNix([...NIX_FEATURES, 'copy', '--quiet', '--log-format', 'raw', '--no-check-sigs', '--to', store.url, ...missing], store.env, { signal })
  } finally {
    bridge.fromNix.unpipe(progress)
    progress.end()
  }
}

/** `nix-store --export` of the paths into `progress` (which ends only when the export succeeded). */
function exportInto(missing: string[], progress: ByteProgress, started: (child: ChildProcessByStdio<null, Readable, Readable>) => void): Promise<void> {
  const child = spawn('nix-store', ['--export', ...missing], { stdio: ['ignore', 'pipe', 'pipe'] })
  started(child)
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)))
  const exported = new Promise<void>((resolve, reject) => {
    child.on('error', (error) => reject(new UserError(`cannot run nix-store: ${error.message}`, { exitCode: ExitCode.local })))
    child.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new UserError(`nix-store --export failed: ${stderr.trim() || signal || `exit ${code}`}`, { exitCode: ExitCode.local })),
    )
  })
  // A failed export must not look like a complete stream: then the connection breaks.
  child.stdout.pipe(progress, { end: false })
  exported.then(
    () => progress.end(),
    (error: Error) => progress.destroy(error),
  )
  return exported
}

function failedImport(exitCode: number, doing: string): never {
  throw new UserError(`${doing} failed (exit ${exitCode})`, {
    hint: 'See nix-store\'s message above; the pod\'s store keeps only complete paths.',
    exitCode: ExitCode.failure,
  })
}
