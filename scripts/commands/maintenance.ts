// `trampoline maintenance`: garbage-collect and optimise the pod's store, keeping what was
// pushed or built (their GC roots), and report the store size before and after.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { runInPod } from '../pod/run.ts'
import { PassThrough } from 'node:stream'
import { RemoteExit, UserError } from '../errors.ts'
import { formatBytes } from '../units.ts'
import { MAINTENANCE_SCRIPT } from '../pod/contract.ts'

export interface MaintenanceReport {
  before: number
  after: number
  freed: number
}

/** maintenance.sh prints exactly one JSON line on stdout; everything else is progress. */
export function parseMaintenanceReport(stdout: string): MaintenanceReport {
  const line = stdout.trim().split('\n').filter(Boolean).pop() ?? ''
  let parsed: Partial<MaintenanceReport>
  try {
    parsed = JSON.parse(line)
  } catch {
    throw new UserError(`maintenance in the pod printed no report (got: ${line.slice(0, 200) || 'nothing'})`)
  }
  const { before, after, freed } = parsed
  if (![before, after, freed].every((n) => typeof n === 'number' && Number.isFinite(n))) {
    throw new UserError(`maintenance report is incomplete: ${line}`)
  }
  return { before: before!, after: after!, freed: freed! }
}

export const command: CommandModule<GlobalOptions, GlobalOptions & { optimise: boolean }> = {
  command: 'maintenance',
  describe: 'Garbage-collect and optimise the pod\'s Nix store (keeps pushed sources and build results)',
  builder: (yargs) =>
    yargs.option('optimise', { type: 'boolean', default: true, describe: 'Deduplicate the store after GC (--no-optimise to skip)' }),
  handler: async (args) => {
    const context = commandContext(args)
    await requireRunningPod(context)
    const out: Buffer[] = []
    const stdout = new PassThrough().on('data', (c: Buffer) => out.push(c))
    // Progress from the script goes straight to our stderr, unless --json or --quiet.
    const stderr = args.quiet || args.json ? new PassThrough().resume() : process.stderr
    // Through pod/run.ts like every other command: a 403 or a vanished pod is a clear error.
    const exitCode = await runInPod(context, {
      command: [MAINTENANCE_SCRIPT, ...(args.optimise ? [] : ['--no-optimise'])],
      stdout,
      stderr,
    })
    if (exitCode !== 0) throw new RemoteExit(exitCode)
    const report = parseMaintenanceReport(Buffer.concat(out).toString('utf8'))
    printResult(context, report, () =>
      `store: ${formatBytes(report.before)} -> ${formatBytes(report.after)} (freed ${formatBytes(report.freed)})`,
    )
  },
}
