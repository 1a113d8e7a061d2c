// Bringing store paths home from the pod, for `build` and `copy-closure --from` alike: the
// daemon container signs the closure with the instance's key (root there is trusted, the
// user container never is), then the local Nix pulls it over the exec store
// (exec-store/shim.ts; its first connection over the FIFO bridge, where one exec signs and
// serves, exec-store/serve.ts) and checks those signatures against the key from the
// instance's Secret; finally, optionally, local GC roots (./result links) as nix build
// makes them.
import { resolve } from 'node:path'
import type { CommandContext } from './context.ts'
import { checkAndSignInPod } from './pod/daemon.ts'
import { addLocalRoot, nixCopyFromArgs, runNix, type StoreProtocol } from './local-nix.ts'
import { BRIDGE_PROGRAM, execStoreTarget, withExecStore } from './exec-store/shim.ts'
import { runOverBridge } from './exec-store/serve.ts'
import { debug, info } from './log.ts'
import { podPublicKey } from './signing/key.ts'
import { planSigCheck, readLocalSigConfig, sigCheckArgs } from './signing/local-trust.ts'
import type { OutLink } from './build-args.ts'

export interface HomeCopyPlan {
  /** `nix copy` arguments for the signature checks (none, a trusted key for this command, or --no-check-sigs). */
  sigArgs: string[]
  /** Whether signatures are checked (so the pod signs the closure first). */
  checked: boolean
}

/**
 * How the copy will check signatures. Cheap and local apart from reading the key, so a
 * build can find out before it starts that the local Nix would refuse its results.
 */
export async function planHomeCopy(context: CommandContext, options: { checkSigs: boolean }): Promise<HomeCopyPlan> {
  const [publicKey, local] = await Promise.all([podPublicKey(context), options.checkSigs ? readLocalSigConfig() : undefined])
  const plan = planSigCheck({ publicKey, noCheckSigs: !options.checkSigs, local, isRoot: process.getuid?.() === 0 })
  return { sigArgs: sigCheckArgs(plan, context.names.instance), checked: plan.kind !== 'off' }
}

export interface HomeCopy {
  store: string
  seconds: number
  checkedSignatures: boolean
}

/**
 * Copy the paths' closures from the pod into the local store. `plan` may still be in the
 * making: the pod's side opens (and checks and signs) meanwhile. A failed nix copy passes
 * its exit code through.
 */
export async function copyHome(
  context: CommandContext,
  paths: string[],
  plan: HomeCopyPlan | Promise<HomeCopyPlan>,
  options: { protocol?: StoreProtocol; sign?: boolean } = {},
): Promise<HomeCopy> {
  const started = Date.now()
  const planned = Promise.resolve(plan)
  planned.catch(() => {})
  // Paths the pod imported, substituted or had from its image carry no signature of ours
  // yet: the pod signs them before it serves them.
  const sign = options.sign ?? (await planned).checked
  const protocol = options.protocol ?? 'ssh-ng'
  const url = await withExecStore(
    execStoreTarget(context),
    protocol,
    async (store) => {
      const copy = async (signal?: AbortSignal) => {
        const { sigArgs, checked } = await planned
        info(`copying ${paths.length} path(s) from ${store.url}${checked ? '' : ' (signatures not checked)'}`)
        await runNix(nixCopyFromArgs(store.url, paths, sigArgs), store.env, { signal })
      }
      if (store.bridge) {
        await runOverBridge(context, store.bridge, BRIDGE_PROGRAM, { paths, sign }, copy)
        debug(`exec store: ${store.bridge.claimed() ? "Nix's first connection took the FIFO bridge" : 'Nix did not take the FIFO bridge'}`)
      } else {
        await Promise.all([checkAndSignInPod(context, paths, { sign }), planned])
        await copy()
      }
      return store.url
    },
    { bridged: true },
  )
  return { store: url, seconds: (Date.now() - started) / 1000, checkedSignatures: (await planned).checked }
}

/** Root each copied path locally under its link (made absolute against the current directory, as nix build does). */
export async function linkHome(links: OutLink[], cwd = process.cwd()): Promise<OutLink[]> {
  const made: OutLink[] = []
  for (const { link, path } of links) {
    const absolute = resolve(cwd, link)
    await addLocalRoot(absolute, path)
    made.push({ link: absolute, path })
  }
  return made
}
