// `trampoline setup`: the flags, one call into the pod layer (pod/ensure.ts makes the
// instance exist and be Ready, idempotently), and the summary.
import type { CommandModule } from 'yargs'
import { commandContext, printResult, type GlobalOptions } from '../context.ts'
import { ExitCode, UserError } from '../errors.ts'
import { setupInstance, type SetupResult } from '../pod/ensure.ts'
import type { StoreSettings } from '../manifests/pod.ts'
import { parseArch, parseIdleTimeout, parsePullPolicy, parseResource, parseSize, parseCacheOptions, type SettingOptions } from '../manifests/settings.ts'
import { parseEgressOption } from '../egress.ts'
import { writeSshFiles } from '../ssh/files.ts'
import { parseDuration } from '../units.ts'
import type { FarmOptions } from '../farm/farm.ts'

interface SetupArgs extends GlobalOptions {
  arch?: string
  image?: string
  cpu?: string
  memory?: string
  storeSize?: string
  storageClass?: string
  idleTimeout?: string
  pullPolicy?: string
  substituter?: string[]
  trustedPublicKey?: string[]
  defaultCache?: boolean
  netrcFile?: string
  imagePullSecret?: string[]
  egress?: string[]
  workers?: number
  workerCpu?: string
  workerMemory?: string
  workerArch?: string[]
  timeout: string
}

/** The explicit options, parsed; a bad value is a usage error. */
export function parseSettingOptions(
  args: Pick<SetupArgs, 'arch' | 'image' | 'cpu' | 'memory' | 'idleTimeout' | 'pullPolicy' | 'substituter' | 'trustedPublicKey' | 'defaultCache' | 'imagePullSecret'>,
): SettingOptions {
  try {
    return {
      caches: parseCacheOptions({ substituter: args.substituter?.map(String), trustedPublicKey: args.trustedPublicKey?.map(String), defaultCache: args.defaultCache }),
      imagePullSecrets: args.imagePullSecret?.map(String).flatMap((s) => s.split(',')).filter(Boolean),
      image: args.image,
      pullPolicy: args.pullPolicy === undefined ? undefined : parsePullPolicy(args.pullPolicy),
      cpu: args.cpu === undefined ? undefined : parseResource('cpu', args.cpu),
      memory: args.memory === undefined ? undefined : parseResource('memory', args.memory),
      arch: args.arch === undefined ? undefined : args.arch === 'any' ? '' : parseArch(args.arch),
      idleTimeoutSeconds: args.idleTimeout === undefined ? undefined : parseIdleTimeout(args.idleTimeout),
    }
  } catch (error) {
    throw new UserError((error as Error).message, { exitCode: ExitCode.usage })
  }
}

/** The build-farm options (scripts/farm/farm.ts); a bad value is a usage error. */
export function parseFarmOptions(args: Pick<SetupArgs, 'workers' | 'workerCpu' | 'workerMemory' | 'workerArch'>): FarmOptions {
  try {
    if (args.workers !== undefined && (!Number.isInteger(args.workers) || args.workers < 0 || args.workers > 64)) {
      throw new Error(`--workers "${args.workers}" is not a whole number from 0 to 64`)
    }
    return {
      workers: args.workers,
      cpu: args.workerCpu === undefined ? undefined : parseResource('worker-cpu', args.workerCpu),
      memory: args.workerMemory === undefined ? undefined : parseResource('worker-memory', args.workerMemory),
      arches: args.workerArch?.map(String).flatMap((a) => a.split(',')).filter(Boolean).map((a) => parseArch(a)),
    }
  } catch (error) {
    throw new UserError((error as Error).message.replace('--arch', '--worker-arch'), { exitCode: ExitCode.usage })
  }
}

function parseTimeout(text: string): number {
  try {
    const seconds = parseDuration(text)
    if (seconds <= 0) throw new Error('zero')
    return seconds
  } catch {
    throw new UserError(`--timeout "${text}" is not a positive duration (e.g. 600, 10m)`, { exitCode: ExitCode.usage })
  }
}

export const command: CommandModule<GlobalOptions, SetupArgs> = {
  command: 'setup',
  describe: 'Create or reuse the instance (store volume, keys, scripts, pod) and wait until it is ready',
  builder: (yargs) =>
    yargs
      .option('image', { type: 'string', describe: 'Container image (full reference; default: the template\'s, or the running pod\'s)' })
      .option('pull-policy', { type: 'string', choices: ['IfNotPresent', 'Never', 'Always'], describe: 'imagePullPolicy (Never for images loaded onto the node, e.g. localhost/...)' })
      .option('arch', { type: 'string', describe: 'Node architecture: amd64, arm64... ("any" to drop an earlier choice)' })
      .option('cpu', { type: 'string', describe: 'CPU for builds (nix-daemon): REQUEST[:LIMIT], e.g. 4 or 2:8 or 2: (no limit)' })
      .option('memory', { type: 'string', describe: 'Memory for builds (nix-daemon): REQUEST[:LIMIT], e.g. 8Gi or 2Gi:16Gi' })
      .option('store-size', { type: 'string', describe: 'Size of the store volume when it is created, e.g. 50Gi' })
      .option('storage-class', { type: 'string', describe: 'StorageClass of the store volume (default: the cluster\'s default)' })
      .option('idle-timeout', { type: 'string', describe: 'Stop the pod after this long without activity: 30m, 2h, 900s; 0 = never' })
      .option('substituter', { type: 'string', array: true, describe: 'A binary cache for the pod (repeatable), added to cache.nixos.org unless --no-default-cache' })
      .option('trusted-public-key', { type: 'string', array: true, describe: 'A key the pod accepts cache paths signed with (repeatable), name:base64' })
      .option('default-cache', { type: 'boolean', describe: 'Use cache.nixos.org (--no-default-cache: only the --substituter ones)' })
      .option('netrc-file', { type: 'string', describe: 'netrc with credentials for private caches; kept in a Secret only the nix-daemon container mounts' })
      .option('egress', { type: 'string', array: true, describe: 'Limit the pod\'s network to DNS, these hosts/CIDRs (comma-separated) and its binary caches (a NetworkPolicy; "all" lifts it)' })
      .option('image-pull-secret', { type: 'string', array: true, describe: 'docker-registry Secret(s) for pulling --image from a private registry' })
      .option('workers', { type: 'number', describe: 'Build-farm worker pods (per --worker-arch): remote builders of this instance; 0 removes them' })
      .option('worker-cpu', { type: 'string', describe: 'CPU per worker: REQUEST[:LIMIT] (default 1); also its parallel builds' })
      .option('worker-memory', { type: 'string', describe: 'Memory per worker: REQUEST[:LIMIT] (default 1Gi:8Gi)' })
      .option('worker-arch', { type: 'string', array: true, describe: 'Node architecture of workers (repeatable: --workers N of each, for mixed-system builds)' })
      .option('timeout', { type: 'string', default: '10m', describe: 'How long to wait for the pod to be ready' })
      .example('$0 setup', 'create or resume the instance of this repository')
      .example('$0 setup --arch arm64 --cpu 8 --memory 16Gi', 'a bigger builder on an arm64 node')
      .example('$0 setup --image localhost/trampoline:test --pull-policy Never', 'an image loaded onto the node')
      .example('$0 setup --workers 4 --worker-cpu 8 --worker-memory 16Gi', 'four more pods building for this one (Nix remote builders)')
      .example('$0 setup --substituter https://cache.example.org --trusted-public-key cache.example.org-1:AAAA...', 'a private cache besides cache.nixos.org'),
  handler: async (args) => {
    const options = parseSettingOptions(args)
    const farmOptions = parseFarmOptions(args)
    const timeoutSeconds = parseTimeout(args.timeout)
    let storeOptions: Partial<StoreSettings>
    try {
      storeOptions = { size: args.storeSize === undefined ? undefined : parseSize('store-size', args.storeSize), storageClass: args.storageClass }
    } catch (error) {
      throw new UserError((error as Error).message, { exitCode: ExitCode.usage })
    }
    const egress = args.egress ? parseEgressOption(args.egress.map(String)) : undefined
    const context = commandContext(args)
    const result = await setupInstance(context, { options, store: storeOptions, timeoutSeconds, farm: farmOptions, netrcFile: args.netrcFile, egress })
    writeSshFiles(context, args)
    printResult(context, result, () => summary(result))
  },
}

function summary(result: SetupResult): string {
  return [
    `instance "${result.instance}" is ready${result.reused ? ' (reused the running pod)' : ''}: pod ${result.pod} on ${result.node ?? 'unknown node'}${result.arch ? ` (${result.arch})` : ''}${result.system ? `, Nix system ${result.system}` : ''}`,
    `  image ${result.image}`,
    `  binary caches: ${result.substituters.length ? result.substituters.join(', ') : 'none'}`,
    ...(result.farm
      ? [
          result.farm.workers.length
            ? `  workers (remote builders): ${result.farm.workers.map((w) => `${w.pod} on ${w.node ?? '?'} (${w.systems[0] ?? '?'}, ${w.maxJobs} job${w.maxJobs === 1 ? '' : 's'})`).join(', ')}`
            : '  workers: none',
        ]
      : []),
    `  next: trampoline push-tarball, trampoline build, trampoline shell, trampoline ssh${result.instance ? ` (--name ${result.instance})` : ''}`,
  ].join('\n')
}
