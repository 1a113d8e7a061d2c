// `trampoline sessions`: the detachable Claude Code sessions running in the pod (started by
// `trampoline claude` on a terminal), to reattach with `trampoline claude --attach [id]`.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { formatSessions, listSessions } from '../agent/sessions.ts'

export const command: CommandModule<GlobalOptions, GlobalOptions> = {
  command: 'sessions',
  describe: 'List the Claude Code sessions running in the pod (id, started, attached, command); claude --attach [id] reattaches',
  builder: (yargs) =>
    yargs
      .example('$0 sessions', 'what runs in the pod, e.g. after a dropped connection')
      .example('$0 sessions --json', '[{"id":"1f2e3d4c","started":"2026-…","attached":false,"clients":0,"command":"claude --continue"}]'),
  handler: async (args) => {
    const context = commandContext(args)
    await requireRunningPod(context)
    const sessions = await listSessions(context)
    printResult(context, sessions, () =>
      sessions.length ? formatSessions(sessions, Date.now()) : `no Claude Code sessions in instance ${context.names.instance} (trampoline claude starts one)`,
    )
  },
}
