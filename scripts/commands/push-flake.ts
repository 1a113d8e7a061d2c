// `trampoline push-flake [flake]`: the flake's source and all its inputs into the pod's
// store (nix flake archive to the exec store, exec-store/shim.ts: the user container's
// untrusted nix-daemon --stdio, which accepts sources, content-addressed, unsigned), so
// the pod can evaluate it without fetching.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { requireRunningPod } from '../pod/pods.ts'
import { NIX_FEATURES, requireLocalNix, runNix } from '../local-nix.ts'
import { execStoreTarget, withExecStore } from '../exec-store/shim.ts'
import { addRootsInPod } from '../pod/gc-roots.ts'

/** `nix flake archive --json`: the flake's source and, recursively, its inputs'. */
interface ArchivedFlake {
  path: string
  inputs?: Record<string, ArchivedFlake>
}

export function archivedPaths(flake: ArchivedFlake): string[] {
  return [flake.path, ...Object.values(flake.inputs ?? {}).flatMap(archivedPaths)]
}

interface PushFlakeArgs extends GlobalOptions {
  flake: string
}

export const command: CommandModule<GlobalOptions, PushFlakeArgs> = {
  command: 'push-flake [flake]',
  describe: 'Copy a flake and its inputs into the pod\'s store',
  builder: (yargs) => yargs.positional('flake', { type: 'string', default: '.', describe: 'Flake reference' }),
  handler: async (args) => {
    const context = commandContext(args)
    await requireLocalNix()
    await requireRunningPod(context)
    const { store, output } = await withExecStore(execStoreTarget(context), 'ssh-ng', async ({ url, env }) => ({
      store: url,
      output: await runNix([...NIX_FEATURES, 'flake', 'archive', '--json', '--to', url, args.flake], env, { capture: true }),
    }))
    const archived = JSON.parse(output) as ArchivedFlake
    const inputs = Object.keys(archived.inputs ?? {})
    await addRootsInPod(context, 'flake', archivedPaths(archived))
    printResult(context, { path: archived.path, inputs, store }, () =>
      `${archived.path}${inputs.length ? ` (+ inputs: ${inputs.join(', ')})` : ''}`,
    )
  },
}
