// Local store paths into the pod without trusting the user container: the closure is
// exported from the local store (`nix-store --export`) and imported by root in the
// nix-daemon container, over exec, which then signs what it added with the instance key.
// Only the paths the pod lacks travel; the stream has backpressure end to end.
import { spawn } from 'node:child_process'
import { $ } from 'zx'
import type { CommandContext } from './context.ts'
import { onInterrupt } from './cleanup.ts'
import { importArgv, invalidInPod, runInDaemon } from './pod/daemon.ts'
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
 * Send what the pod lacks of the paths' closures. `beside` runs once the local store has
 * them all, at the same time as the import (GC roots: a root may name a path before it is
 * valid), and the send waits for it.
 */
export async function sendClosure(context: CommandContext, paths: string[], report: boolean, options: { beside?: () => Promise<void> } = {}): Promise<ImportResult> {
  const closure = await localClosure(paths)
  const beside = options.beside?.()
  beside?.catch(() => {})
  const missing = await invalidInPod(context, closure)
  if (!missing.length) {
    await beside
    return { closure: closure.length, sent: 0, bytes: 0, seconds: 0 }
  }

  const exporter = spawn('nix-store', ['--export', ...missing], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  exporter.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-2000)))
  const exported = new Promise<void>((resolve, reject) => {
    exporter.on('error', (error) => reject(new UserError(`cannot run nix-store: ${error.message}`, { exitCode: ExitCode.local })))
    exporter.on('close', (code, signal) =>
      code === 0 ? resolve() : reject(new UserError(`nix-store --export failed: ${stderr.trim() || signal || `exit ${code}`}`, { exitCode: ExitCode.local })),
    )
  })
  exported.catch(() => {})
  const kill = () => {
    if (exporter.exitCode === null && exporter.signalCode === null) exporter.kill()
  }

  const progress = new ByteProgress({ label: 'copy', live: report ? undefined : false })
  progress.on('error', () => {})
  progress.phase(`sending ${missing.length} path(s)`)
  // A failed export must not look like a complete stream: then the connection breaks.
  exporter.stdout.pipe(progress, { end: false })
  exported.then(() => progress.end(), (error: Error) => progress.destroy(error))

  let session: ExecSession | undefined
  const unregister = onInterrupt(() => {
    session?.abort()
    kill()
  })
  try {
    const stderrOut = process.stderr
    const exitCode = await runInDaemon(context, { command: importArgv(), stdin: progress, stdout: stderrOut, stderr: stderrOut, onOpen: (open) => (session = open) })
    await exported
    await beside
    if (exitCode !== 0) {
      throw new UserError(`importing into the pod's store failed (exit ${exitCode})`, {
        hint: 'See nix-store\'s message above; the pod\'s store keeps only complete paths.',
        exitCode: ExitCode.failure,
      })
    }
    const { bytes, seconds } = progress.finish(report ? 'copied' : undefined)
    return { closure: closure.length, sent: missing.length, bytes, seconds }
  } finally {
    unregister()
    kill()
    progress.finish()
  }
}
