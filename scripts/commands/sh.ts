// `trampoline sh -c '<command>' [name [args...]]`: a drop-in `sh -c` for local agents
// (CLAUDE_CODE_SHELL=bin/trampoline-sh). Each command runs in the pod, in the pushed copy
// of the current directory, after pushing the work tree if it changed (in the same exec).
// Exit code, stdout and stderr are the command's own. Changes made in the pod since the
// last push are never overwritten: the command does not run, and the error names them.
import { realpathSync } from 'node:fs'
import type { CommandModule } from 'yargs'
import type { GlobalOptions } from '../context.ts'
import { ExitCode, RemoteExit, UserError } from '../errors.ts'
import { findRepoRoot, pushSource, requireRepo, type PushSource } from '../git.ts'
import { debug } from '../log.ts'
import { disableMux, muxEnabled, runThroughMux } from '../mux/client.ts'
import { muxTarget, type MuxTarget } from '../mux/target.ts'
import { SH_USAGE, parseShArgs, remoteShArgv } from '../sh-args.ts'
import { releaseStdin } from '../terminal.ts'
import { remoteCwd } from '../workspace.ts'
import { prepareFramed, settleFramed, type ShRun } from '../workspace/framed.ts'
import { lastPushed } from '../workspace/record.ts'
import type { PodState } from '../workspace/state.ts'

/**
 * The command through the local helper (scripts/mux/): nothing changed since the last push
 * (local state, no round trip), or the edit's pack in the command's own exec. Its exit code;
 * or the pod's state when it lacks more than the pack held (resend); `notTaken` when the
 * helper did not take it (nothing ran); `direct` when the pack is too big for the exec.
 */
async function viaHelper(target: MuxTarget, root: string, source: PushSource, run: ShRun): Promise<{ exitCode: number } | { resend: PodState } | { notTaken: true } | { direct: true }> {
  const last = lastPushed(target.state)
  const unchanged = last?.tree === source.tree && last.commit === source.commit
  const framed = unchanged ? undefined : await prepareFramed(root, source, last, run)
  if (!unchanged && !framed) return { direct: true }
  const exitCode = await runThroughMux(target, framed ?? run)
  if (exitCode === undefined) return { notTaken: true }
  if (!framed) {
    debug(`tree ${source.tree} unchanged since the last push`)
    return { exitCode }
  }
  const outcome = settleFramed(target.state, target.names.instance, source, framed, exitCode)
  if ('exitCode' in outcome) debug(`pushed tree ${source.tree} (${framed.bytes} bytes, ${framed.objects} objects)`)
  return outcome
}

interface ShArgs extends GlobalOptions {
  /** Everything after `sh` (cli.ts puts a `--` there so yargs leaves it alone). */
  '--'?: string[]
}

export const command: CommandModule<GlobalOptions, ShArgs> = {
  command: 'sh',
  describe: 'sh -c for local agents: run a command in the pod\'s copy of this directory, pushing changes first',
  builder: (yargs) =>
    yargs
      .parserConfiguration({ 'populate--': true })
      .usage(`${SH_USAGE}\n\nSet CLAUDE_CODE_SHELL to bin/trampoline-sh to run an agent's commands in the pod.`)
      .example("$0 sh -c 'make test'", 'push the work tree if it changed, then run make test in the pod'),
  handler: async (args) => {
    const invocation = parseShArgs((args['--'] ?? []).map(String))
    const root = requireRepo(findRepoRoot())
    const cwd = remoteCwd(realpathSync(root), realpathSync(process.cwd()))
    if (!cwd) {
      throw new UserError(`${process.cwd()} is outside the repository ${root}, and the pod has only the repository`, {
        hint: `Run commands from inside ${root}.`,
        exitCode: ExitCode.local,
      })
    }
    const source = await pushSource(root, 'worktree')
    const run = { command: remoteShArgv(invocation, cwd), stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }
    // Through the local helper when it is on, before loading the push and client-node (most
    // of an agent's commands).
    const target = muxEnabled() ? muxTarget(args) : undefined
    const helped = target && (await viaHelper(target, root, source, run).catch((error: unknown) => {
      releaseStdin()
      throw error
    }))
    if (helped && 'exitCode' in helped) {
      releaseStdin()
      if (helped.exitCode !== 0) throw new RemoteExit(helped.exitCode)
      return
    }
    // The helper did not take it and nothing ran: the direct path, without trying it again.
    if (helped && 'notTaken' in helped) disableMux()
    const resend = helped && 'resend' in helped ? helped.resend : undefined
    const [{ commandContext }, { pushThenRun, runAfterPush }] = await Promise.all([import('../context.ts'), import('../pod/push.ts')])
    const context = commandContext(args)
    // A changed tree travels in the command's own exec (one round trip either way); a pod
    // whose pushed tree was not the one recorded here gets what it lacks first.
    const { exitCode, push } = await (resend ? pushThenRun(context, root, source, run, resend) : runAfterPush(context, root, source, run)).finally(() => releaseStdin())
    debug(push.skipped ? `tree ${push.tree} unchanged since the last push` : `pushed tree ${push.tree} (${push.bytes} bytes, ${push.objects} objects)`)
    if (exitCode !== 0) throw new RemoteExit(exitCode)
  },
}
