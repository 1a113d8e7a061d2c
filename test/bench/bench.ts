// The measuring half of test/bench/run.sh (which prepares the instance, repositories and
// store paths, and cleans up). Every measurement is paired with a baseline taken in this
// same process, on the same pod, right before it, and reported as the median of the
// per-pair ratios, never against an absolute threshold:
//
//   push-tarball (big files)   vs  the raw exec channel: the tree's bytes into `cat >/dev/null`
//                                  (the push follows a one-file change: since the git-pack push it
//                                  sends only what the pod lacks; a full first push: workspace.sh)
//   push-tarball (small files) vs  the same, for the small-file tar's size
//   peak RSS of the CLI during the big push  vs  the payload, and a trivial command's RSS
//   copy-closure to the pod    vs  raw exec upload of the same bytes (fresh store paths every run)
//   copy-closure --from        vs  raw exec download of the same files
//   push-tarball, nothing new  vs  `shell -- true`
//
// Usage: node test/bench/bench.ts --name INSTANCE [--namespace NS] [--repeat N]
//          [--noop-repeat N] [--big-repo DIR] [--small-repo DIR] [--closures FILE]
//          [--chunk-kib N] [--cli BIN_JS] [--json]
// --closures FILE: lines "ssh-ng <tiny|data> <run> <nar-bytes> <store-path>" (paths not yet in the pod).
// The CLI is --cli (default: this checkout's bin/trampoline.js), run on this Node with $KUBECONFIG and
// $XDG_STATE_HOME as given. Progress goes to stderr; the table (or JSON) to stdout.
import { spawn, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { VersionApi } from '@kubernetes/client-node'
import { connect } from '../../scripts/kube/client.ts'
import { exec, execCapture } from '../../scripts/kube/exec.ts'
import { namesFor } from '../../scripts/instance.ts'
import { USER_CONTAINER } from '../../scripts/pod/contract.ts'

const MiB = 1024 * 1024
const here = fileURLToPath(new URL('.', import.meta.url))
const probe = join(here, 'rss-probe.ts')
const GNU_TIME = '/usr/bin/time'

const { values: opts } = parseArgs({
  options: {
    name: { type: 'string' },
    namespace: { type: 'string' },
    repeat: { type: 'string', default: '3' },
    'noop-repeat': { type: 'string', default: '5' },
    'big-repo': { type: 'string' },
    'small-repo': { type: 'string' },
    closures: { type: 'string' },
    cli: { type: 'string' },
    'chunk-kib': { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
})
const cliJs = opts.cli ?? fileURLToPath(new URL('../../bin/trampoline.js', import.meta.url))
if (!opts.name) {
  process.stderr.write('bench.ts: --name INSTANCE is required (run test/bench/run.sh, which sets everything up)\n')
  process.exit(2)
}
const instance = opts.name
const repeat = positiveInt(opts.repeat, 'repeat')
const noopRepeat = positiveInt(opts['noop-repeat'], 'noop-repeat')
const chunkBytes = positiveInt(opts['chunk-kib'], 'chunk-kib') * 1024
const common = ['--name', instance, ...(opts.namespace ? ['--namespace', opts.namespace] : [])]
const scratch = mkdtempSync(join(tmpdir(), 'trampoline-bench-'))
const cluster = connect({ namespace: opts.namespace })
const target = { kc: cluster.kc, namespace: cluster.namespace, pod: namesFor(instance).pod, container: USER_CONTAINER }

function positiveInt(text: string | undefined, what: string): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench.ts: --${what} must be a positive integer (got ${text})\n`)
    process.exit(2)
  }
  return n
}

function say(message: string): void {
  process.stderr.write(`[bench] ${message}\n`)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

// --- the two kinds of runs ---------------------------------------------------------

interface RawRun {
  seconds: number
  cpuSeconds: number
}

/** The baseline: `bytes` bytes (random, in chunkBytes pieces) into `cat >/dev/null` in the
 * user container, through the project's exec module, in this process. */
async function rawExec(bytes: number): Promise<RawRun> {
  const block = randomBytes(chunkBytes)
  let sent = 0
  const source = new Readable({
    read() {
      if (sent >= bytes) return void this.push(null)
      const n = Math.min(block.length, bytes - sent)
      sent += n
      // A fresh buffer per chunk, as a pipe read gives (git archive's stdout in a push).
      const chunk = Buffer.allocUnsafe(n)
      block.copy(chunk, 0, 0, n)
      this.push(chunk)
    },
  })
  const cpu = process.cpuUsage()
  const started = performance.now()
  const result = await exec(target, { command: ['sh', '-c', 'cat >/dev/null'], stdin: source, stderr: process.stderr })
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  if (result.exitCode !== 0 || sent !== bytes) throw new Error(`raw exec failed: exit ${result.exitCode} ${result.message ?? ''} (sent ${sent}/${bytes})`)
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6 }
}

interface CliRun {
  code: number
  /** Spawn until the CLI's output pipes closed: what a script reading its output waits for. */
  wall: number
  /** Spawn until the CLI's own process exited (what a terminal waits for). */
  exitWall: number
  stdout: string
  stderr: string
  /** The CLI's own node process (rss-probe.ts). */
  rssKiB?: number
  cpuSeconds?: number
  /** The largest process of the CLI's tree (node or a child such as git), from GNU time. */
  treeRssKiB?: number
}

let cliRuns = 0
async function cli(args: string[], cwd: string): Promise<CliRun> {
  const n = ++cliRuns
  const rssFile = join(scratch, `rss-${n}.jsonl`)
  const timeFile = join(scratch, `time-${n}.txt`)
  const argv = [process.execPath, cliJs, ...args]
  const withTime = existsSync(GNU_TIME) ? [GNU_TIME, '-f', '%M', '-o', timeFile, ...argv] : argv
  const env = {
    ...process.env,
    // A file: URL has no spaces, which NODE_OPTIONS would split on.
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${pathToFileURL(probe).href}`.trim(),
    TRAMPOLINE_BENCH_RSS_FILE: rssFile,
  }
  const started = performance.now()
  let exitWall = Number.NaN
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(withTime[0], withTime.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    // A process the CLI started (e.g. ssh's ProxyCommand) can hold the pipes open after it exits.
    child.on('exit', () => (exitWall = (performance.now() - started) / 1000))
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c))
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c))
    child.on('error', reject)
    child.on('close', (status) => resolve({ code: status ?? 128, stdout: out, stderr: err }))
  })
  const wall = (performance.now() - started) / 1000
  const run: CliRun = { code, wall, exitWall, stdout, stderr }
  if (existsSync(rssFile)) {
    const line = JSON.parse(readFileSync(rssFile, 'utf8').trim().split('\n')[0])
    run.rssKiB = line.maxRssKiB
    run.cpuSeconds = line.userSeconds + line.systemSeconds
  }
  if (existsSync(timeFile)) {
    const kib = Number(readFileSync(timeFile, 'utf8').trim().split('\n').pop())
    if (Number.isFinite(kib)) run.treeRssKiB = kib
  }
  return run
}

async function cliOk(args: string[], cwd: string): Promise<CliRun> {
  const run = await cli(args, cwd)
  if (run.code !== 0) throw new Error(`trampoline ${args.join(' ')} failed (exit ${run.code}):\n${run.stderr}`)
  return run
}

function git(cwd: string, args: string[]): string {
  return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

/** A new tree of the same size: the next push is a real one, replacing a same-sized tree. */
function bump(repo: string, run: number): void {
  writeFileSync(join(repo, '.bench-run'), `${String(run).padStart(8, '0')}\n`)
  git(repo, ['add', '.bench-run'])
  git(repo, ['-c', 'user.email=bench@trampoline', '-c', 'user.name=bench', 'commit', '-q', '-m', `bench run ${run}`])
}

/** `git archive` alone, into /dev/null: how fast the local side can produce the stream. */
async function gitArchiveSeconds(repo: string): Promise<number> {
  const devNull = openSync('/dev/null', 'w')
  const started = performance.now()
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('git', ['archive', '--format=tar', 'HEAD'], { cwd: repo, stdio: ['ignore', devNull, 'inherit'] })
      child.on('error', reject)
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`git archive exit ${code}`))))
    })
  } finally {
    closeSync(devNull)
  }
  return (performance.now() - started) / 1000
}

const pod = namesFor(instance).pod
const kubectlNs = ['-n', cluster.namespace]
/** kubectl on PATH (Debian's, or one of the cluster's version): the baselines users compare with. */
const kubectl = (() => {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

/** bash -c SCRIPT with $1... as args, timed; throws on failure. */
async function timedBash(script: string, args: string[], cwd: string): Promise<number> {
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -eo pipefail; ${script}`, 'bench', ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`bash -c ${script.slice(0, 60)}... exit ${code}: ${err}`))))
  })
  return (performance.now() - started) / 1000
}

const KUBECTL_DIR = '/workspace/.bench-kubectl'
const podRemove = () => execCapture(target, ['sh', '-c', `chmod -R u+w ${KUBECTL_DIR} ${KUBECTL_DIR}.tar 2>/dev/null; rm -rf ${KUBECTL_DIR} ${KUBECTL_DIR}.tar`])

/** `git archive HEAD | kubectl exec -i POD -- tar -x` into a fresh directory (removed afterwards, untimed). */
async function kubectlPipeSeconds(repo: string): Promise<number> {
  await podRemove()
  const seconds = await timedBash(
    'git archive --format=tar HEAD | kubectl exec -i "$1" "$2" "$3" -c user -- sh -c \'mkdir -p "$1" && tar -x -f - -C "$1"\' _ "$4"',
    [...kubectlNs, pod, KUBECTL_DIR],
    repo,
  )
  await podRemove()
  return seconds
}

/** The original nix-trampoline method: git archive to a temp file, kubectl cp, tar -x in the pod. */
async function kubectlCpSeconds(repo: string): Promise<number> {
  await podRemove()
  const tar = join(scratch, 'kubectl-cp.tar')
  const seconds = await timedBash(
    'git archive --format=tar -o "$5" HEAD && kubectl cp "$1" "$2" -c user "$5" "$3:$4.tar" && ' +
      'kubectl exec "$1" "$2" "$3" -c user -- sh -c \'mkdir -p "$1" && tar -x -f "$1.tar" -C "$1" && rm -f "$1.tar"\' _ "$4" && rm -f "$5"',
    [...kubectlNs, pod, KUBECTL_DIR, tar],
    repo,
  )
  await podRemove()
  return seconds
}

/**
 * The pod's share of a push, without the channel: push-receive.sh's `tar -x` of the tree now
 * in /workspace/src (re-tarred on the same volume, read back from the page cache), and its
 * remove_tree (chmod -R u+w, rm -rf), which runs on the old tree before the push returns.
 */
async function podUnpack(): Promise<{ extract: number; remove: number }> {
  const script = [
    'set -e',
    'd=/workspace/.bench-unpack',
    'rm -rf "$d" "$d.tar"; mkdir -p "$d"',
    'tar -c -f "$d.tar" -C /workspace/src/ .',
    't0=$(date +%s%N)',
    'tar -x -R -v -f "$d.tar" -C "$d" --no-same-owner | tail -n 1 >/dev/null',
    't1=$(date +%s%N)',
    'chmod -R u+w "$d" 2>/dev/null || true; rm -rf "$d"',
    't2=$(date +%s%N)',
    'rm -f "$d.tar"',
    'echo "$t0 $t1 $t2"',
  ].join('\n')
  const result = await execCapture(target, ['bash', '-c', script])
  if (result.exitCode !== 0) throw new Error(`pod unpack timing failed: ${result.stderr}`)
  const [t0, t1, t2] = result.stdout.trim().split(' ').map(Number)
  return { extract: (t1 - t0) / 1e9, remove: (t2 - t1) / 1e9 }
}

// --- results -----------------------------------------------------------------------

interface Row {
  id: string
  label: string
  bytes?: number
  /** Seconds of each run. */
  runs: number[]
  median: number
  mibPerSecond?: number
  /** Row id of the baseline, and the median of the per-run ratios (this run / its baseline run). */
  baseline?: string
  ratio?: number
  ratios?: number[]
  extra?: Record<string, number | string>
}

const rows: Row[] = []

function addRow(row: Omit<Row, 'median' | 'mibPerSecond' | 'ratio'> & { pairedWith?: number[] }): Row {
  const { pairedWith, ...rest } = row
  const med = median(row.runs)
  const out: Row = { ...rest, median: med }
  // (Not for tiny payloads, where a rate means nothing.)
  if (row.bytes !== undefined && row.bytes >= MiB && med > 0) out.mibPerSecond = row.bytes / MiB / med
  if (pairedWith) {
    out.ratios = row.runs.map((s, i) => s / pairedWith[i])
    out.ratio = median(out.ratios)
  }
  rows.push(out)
  return out
}

/** Seconds the output pipes stayed open after the CLI exited, worst run (0.1 s and less is noise). */
const lingerMax = (runs: CliRun[]) => Math.max(0, ...runs.map((r) => r.wall - r.exitWall).filter(Number.isFinite))
function lingerNote(runs: CliRun[]): Record<string, number> {
  return lingerMax(runs) > 0.5 ? { pipesOpenAfterExitMaxSeconds: lingerMax(runs) } : {}
}

const maxOf = (values: (number | undefined)[]) => Math.max(...values.filter((v): v is number => v !== undefined))
const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10

// --- scenarios -----------------------------------------------------------------------

async function pushScenario(id: string, what: string, repo: string): Promise<void> {
  say(`${id}: warm-up push (the pod gets a tree of this repository to replace)`)
  const warm = JSON.parse((await cliOk(['push-tarball', '--force', '--json', ...common], repo)).stdout)
  const bytes: number = warm.bytes
  say(`${id}: ${(bytes / MiB).toFixed(1)} MiB of tar per push`)

  const archive: number[] = []
  const raw: RawRun[] = []
  const push: CliRun[] = []
  const reported: number[] = []
  const pipe: number[] = []
  const cp: number[] = []
  for (let i = 1; i <= repeat; i++) {
    archive.push(await gitArchiveSeconds(repo))
    const r = await rawExec(bytes)
    raw.push(r)
    bump(repo, i)
    const p = await cliOk(['push-tarball', '--json', ...common], repo)
    const result = JSON.parse(p.stdout)
    if (result.skipped) throw new Error(`${id}: push ${i} was skipped (tree already in the pod?)`)
    push.push(p)
    reported.push(result.seconds)
    say(`${id} ${i}/${repeat}: raw exec ${r.seconds.toFixed(2)}s, push ${result.seconds.toFixed(2)}s (${p.wall.toFixed(2)}s wall, node ${mib(p.rssKiB ?? 0)} MiB RSS)`)
    if (kubectl) {
      pipe.push(await kubectlPipeSeconds(repo))
      cp.push(await kubectlCpSeconds(repo))
      say(`${id} ${i}/${repeat}: git archive | kubectl exec -i tar -x ${pipe.at(-1)!.toFixed(2)}s, kubectl cp ${cp.at(-1)!.toFixed(2)}s`)
    }
  }
  if (kubectl) {
    addRow({ id: `${id}-kubectl-pipe`, label: `git archive | kubectl exec -i -- tar -x (${what})`, bytes, runs: pipe })
    addRow({ id: `${id}-kubectl-cp`, label: `git archive to a file, kubectl cp, tar -x (${what})`, bytes, runs: cp })
    addRow({ id: `${id}-push-vs-pipe`, label: `push-tarball after a one-file change vs a full git archive | kubectl exec -i (${what})`, bytes, runs: push.map((p) => p.wall), baseline: `${id}-kubectl-pipe`, pairedWith: pipe })
    addRow({ id: `${id}-push-vs-cp`, label: `push-tarball after a one-file change vs a full kubectl cp (${what})`, bytes, runs: push.map((p) => p.wall), baseline: `${id}-kubectl-cp`, pairedWith: cp })
  }
  const rawSeconds = raw.map((r) => r.seconds)
  addRow({
    id: `${id}-raw`,
    label: `raw exec -> cat >/dev/null (${what})`,
    bytes,
    runs: rawSeconds,
    extra: { cpuSeconds: median(raw.map((r) => r.cpuSeconds)) },
  })
  addRow({
    id: `${id}-push`,
    label: `push-tarball after a one-file change, CLI's seconds (${what}; incremental: only what the pod lacks travels)`,
    bytes,
    runs: reported,
    baseline: `${id}-raw`,
    pairedWith: rawSeconds,
    extra: {
      cpuSeconds: median(push.map((p) => p.cpuSeconds ?? Number.NaN)),
      peakRssMiB: mib(maxOf(push.map((p) => p.rssKiB))),
      ...(push.some((p) => p.treeRssKiB) ? { peakTreeRssMiB: mib(maxOf(push.map((p) => p.treeRssKiB))) } : {}),
    },
  })
  addRow({
    id: `${id}-push-wall`,
    label: `push-tarball after a one-file change, whole command (${what})`,
    bytes,
    runs: push.map((p) => p.wall),
    baseline: `${id}-raw`,
    pairedWith: rawSeconds,
    extra: lingerNote(push),
  })
  addRow({ id: `${id}-git-archive`, label: `git archive -> /dev/null, local (${what})`, bytes, runs: archive })
  const pod: { extract: number; remove: number }[] = []
  for (let i = 1; i <= repeat; i++) pod.push(await podUnpack())
  say(`${id}: in the pod, tar -x ${median(pod.map((p) => p.extract)).toFixed(2)}s, remove_tree ${median(pod.map((p) => p.remove)).toFixed(2)}s`)
  addRow({ id: `${id}-pod-extract`, label: `pod: tar -x of that tar from page cache (${what})`, bytes, runs: pod.map((p) => p.extract) })
  addRow({ id: `${id}-pod-remove`, label: `pod: remove_tree of one such tree (${what})`, bytes, runs: pod.map((p) => p.remove) })
}

async function noopScenario(repo: string): Promise<void> {
  // The pod holds this repository's HEAD tree: push-tarball finds nothing to send.
  const shell: CliRun[] = []
  const noop: CliRun[] = []
  const version: number[] = []
  const kexec: number[] = []
  for (let i = 1; i <= noopRepeat; i++) {
    version.push((await cliOk(['--version'], repo)).wall)
    if (kubectl) kexec.push(await timedBash('kubectl exec "$1" "$2" "$3" -c user -- true', [...kubectlNs, pod], repo))
    const s = await cliOk(['shell', ...common, '--', 'true'], repo)
    const p = await cliOk(['push-tarball', '--json', ...common], repo)
    if (!JSON.parse(p.stdout).skipped) throw new Error('no-op push: the push was not skipped')
    shell.push(s)
    noop.push(p)
    say(`no-op ${i}/${noopRepeat}: shell -- true ${s.wall.toFixed(2)}s, push-tarball (unchanged) ${p.wall.toFixed(2)}s`)
  }
  const shellWall = shell.map((s) => s.wall)
  addRow({ id: 'cli-startup', label: 'trampoline --version (node + module load, no cluster)', runs: version })
  if (kubectl) addRow({ id: 'kubectl-exec-true', label: 'kubectl exec POD -c user -- true', runs: kexec })
  addRow({
    id: 'shell-true',
    label: 'shell -- true (through the mux helper; the checkout\'s sources, with the RSS probe)',
    runs: shellWall,
    ...(kubectl ? { baseline: 'kubectl-exec-true', pairedWith: kexec } : {}),
    extra: { peakRssMiB: mib(maxOf(shell.map((s) => s.rssKiB))), cpuSeconds: median(shell.map((s) => s.cpuSeconds ?? Number.NaN)) },
  })
  addRow({
    id: 'push-noop',
    label: 'push-tarball, tree unchanged (nothing sent)',
    runs: noop.map((p) => p.wall),
    baseline: 'shell-true',
    pairedWith: shellWall,
    extra: { cpuSeconds: median(noop.map((p) => p.cpuSeconds ?? Number.NaN)) },
  })
}

interface ClosureSet {
  bytes: number
  paths: string[]
}

/** The baseline for a download: `bytes` bytes out of the user container (`cat` of store files) into nothing. */
async function rawDownload(paths: string[]): Promise<RawRun & { bytes: number }> {
  let bytes = 0
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length
      callback()
    },
  })
  const cpu = process.cpuUsage()
  const started = performance.now()
  const result = await exec(target, { command: ['cat', ...paths], stdout: sink, stderr: process.stderr })
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  if (result.exitCode !== 0) throw new Error(`raw download failed: exit ${result.exitCode} ${result.message ?? ''}`)
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6, bytes }
}

/**
 * copy-closure both ways against the raw exec channel with the same bytes. Per run, the
 * closures file has a "tiny" set (one small path: a copy's fixed cost) and two sets of
 * fresh paths, "data" (input-addressed, as build outputs are) and "data-ca"
 * (content-addressed, as sources are: Nix hashes each from disk again when it takes it
 * in): raw upload of the NAR size, copy-closure to the pod, then the paths are
 * deleted locally, raw download of the same files out of the pod, copy-closure --from
 * (signature-checked, back into the local store). Lines of the other protocol are ignored.
 */
async function copyScenario(file: string, cwd: string): Promise<void> {
  const sets = new Map<string, ClosureSet>()
  const runIds = new Set<number>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue
    const [protocol, kind, run, bytes, path] = line.trim().split(/\s+/)
    if (protocol !== 'ssh-ng') continue
    const key = `${kind} ${run}`
    const set = sets.get(key) ?? { bytes: 0, paths: [] }
    set.bytes += Number(bytes)
    set.paths.push(path)
    sets.set(key, set)
    runIds.add(Number(run))
  }
  const runs = [...runIds].sort((a, b) => a - b)
  const kinds = ['tiny', 'data', 'data-ca'] as const
  type Series = { up: number[]; to: number[]; down: number[]; from: number[]; nixAlone: number[]; toWall: CliRun[]; fromWall: CliRun[] }
  const series = (): Series => ({ up: [], to: [], down: [], from: [], nixAlone: [], toWall: [], fromWall: [] })
  const got = { tiny: series(), data: series(), 'data-ca': series() }
  const shape = { tiny: { bytes: 0, count: 0 }, data: { bytes: 0, count: 0 }, 'data-ca': { bytes: 0, count: 0 } }
  const addressing = { tiny: 'content-addressed', data: 'input-addressed', 'data-ca': 'content-addressed' }
  for (const [i, run] of runs.entries()) {
    for (const kind of kinds) {
      const set = sets.get(`${kind} ${run}`)
      if (!set) throw new Error(`closures file has no ${kind} paths for run ${run}`)
      shape[kind] = { bytes: set.bytes, count: set.paths.length }
      const g = got[kind]
      settleWrites()
      g.up.push((await rawExec(set.bytes)).seconds)
      const to = await cliOk(['copy-closure', '--json', ...common, ...set.paths], cwd)
      g.to.push(JSON.parse(to.stdout).seconds)
      g.toWall.push(to)
      execFileSync('nix-store', ['--delete', ...set.paths], { stdio: 'ignore' })
      settleWrites()
      g.down.push((await rawDownload(set.paths)).seconds)
      const from = await cliOk(['copy-closure', '--from', '--json', ...common, ...set.paths], cwd)
      g.from.push(JSON.parse(from.stdout).seconds)
      g.fromWall.push(from)
      if (kind !== 'tiny') g.nixAlone.push(nixAlone(set.paths))
      say(
        `copy-closure ${i + 1}/${runs.length} ${kind}: raw up ${g.up.at(-1)!.toFixed(2)}s, to pod ${g.to.at(-1)!.toFixed(2)}s; ` +
          `raw down ${g.down.at(-1)!.toFixed(2)}s, --from ${g.from.at(-1)!.toFixed(2)}s`,
      )
    }
  }
  for (const kind of kinds) {
    const { bytes, count } = shape[kind]
    const what = `${count} path${count === 1 ? '' : 's'}, ${bytes < MiB ? `${(bytes / 1024).toFixed(0)} KiB` : `${(bytes / MiB).toFixed(0)} MiB`} NAR, ${addressing[kind]}`
    const g = got[kind]
    addRow({ id: `copy-${kind}-raw-up`, label: `raw exec upload, same bytes (${what})`, bytes, runs: g.up })
    addRow({
      id: `copy-${kind}-to`,
      label: `copy-closure to the pod (${what})`,
      bytes,
      runs: g.to,
      baseline: `copy-${kind}-raw-up`,
      pairedWith: g.up,
      extra: { wallMedian: median(g.toWall.map((c) => c.wall)), ...lingerNote(g.toWall) },
    })
    addRow({ id: `copy-${kind}-raw-down`, label: `raw exec download, same files (${what})`, bytes, runs: g.down })
    addRow({
      id: `copy-${kind}-from`,
      label: `copy-closure --from the pod (${what})`,
      bytes,
      runs: g.from,
      baseline: `copy-${kind}-raw-down`,
      pairedWith: g.down,
      extra: { wallMedian: median(g.fromWall.map((c) => c.wall)), ...lingerNote(g.fromWall) },
    })
    if (g.nixAlone.length) {
      addRow({
        id: `copy-${kind}-nix-alone`,
        label: `Nix's own stages alone, no cluster: nix-store --export | --import into a scratch store (${what})`,
        bytes,
        runs: g.nixAlone,
        baseline: `copy-${kind}-raw-down`,
        pairedWith: g.down,
      })
    }
  }
}

/**
 * Flush what earlier steps wrote (the paths made for the run, the last copy's store
 * writes; the pod's volume is this machine's disk), so its write-back does not land in
 * the middle of the next pair's measurements.
 */
function settleWrites(): void {
  execFileSync('sync', [], { stdio: 'ignore' })
}

/**
 * What a copy costs in Nix alone, on this machine: serialise the paths and import them
 * (hash, write, register) into a scratch store, no cluster in between. Its ratio to the raw
 * download says how much a copy must cost over the channel where the stages cannot overlap
 * with it (both CPUs busy). The scratch store is set up before the clock starts.
 */
function nixAlone(paths: string[]): number {
  const store = mkdtempSync(join(scratch, 'nix-alone-'))
  const sh = (script: string) => execFileSync('sh', ['-c', script, 'nix-alone', store, ...paths], { stdio: ['ignore', 'ignore', 'pipe'] })
  try {
    sh('nix-store --store "$1" --init 2>/dev/null')
    const started = performance.now()
    sh('s=$1; shift; nix-store --export "$@" | nix-store --store "$s" --option require-sigs false --import >/dev/null 2>&1')
    return (performance.now() - started) / 1000
  } finally {
    execFileSync('chmod', ['-R', 'u+w', store])
    rmSync(store, { recursive: true, force: true })
  }
}

// --- report --------------------------------------------------------------------------

function versionOf(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim().split('\n')[0]
  } catch {
    return 'not found'
  }
}

async function machine(): Promise<Record<string, string | number>> {
  const server = await cluster.kc
    .makeApiClient(VersionApi)
    .getCode()
    .then((v) => v.gitVersion, () => 'unknown')
  let os = 'unknown'
  try {
    os = /PRETTY_NAME="?([^"\n]*)/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? os
  } catch {
    // not Linux, or no os-release
  }
  return {
    cpu: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os,
    kernel: release(),
    node: process.versions.node,
    // The package's build (what users run) or a checkout's sources.
    cli: existsSync(new URL('../dist/cli.js', pathToFileURL(cliJs))) ? `build (${cliJs})` : `sources (${cliJs})`,
    git: versionOf('git', ['--version']),
    nix: versionOf('nix', ['--version']),
    podNix: await execCapture(target, ['nix', '--version']).then((r) => r.stdout.trim() || 'unknown', () => 'unknown'),
    kubernetes: server,
    context: cluster.context,
  }
}

function fmt(n: number | undefined, digits = 2): string {
  return n === undefined || !Number.isFinite(n) ? '' : n.toFixed(digits)
}

function printTable(info: Record<string, unknown>): void {
  const header = ['measurement', 'size MiB', 'median s', 'MiB/s', 'ratio', 'vs', 'notes']
  const lines = rows.map((r) => [
    r.label,
    r.bytes === undefined ? '' : fmt(r.bytes / MiB, 1),
    fmt(r.median),
    fmt(r.mibPerSecond, 1),
    fmt(r.ratio),
    r.baseline ?? '',
    Object.entries(r.extra ?? {})
      .filter(([, v]) => typeof v === 'string' || Number.isFinite(v))
      .map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(2) : v}`)
      .join(' '),
  ])
  const ids = rows.map((r) => r.id)
  const table = [header, ...lines]
  const widths = header.map((_, c) => Math.max(...table.map((l) => l[c].length)))
  const out = [
    `trampoline benchmark, ${info.date}, instance ${instance}, ${repeat} runs each (no-op: ${noopRepeat}), medians`,
    ...Object.entries(info.machine as Record<string, unknown>).map(([k, v]) => `  ${k}: ${v}`),
    `  load average before/after: ${info.loadBefore} / ${info.loadAfter}`,
    '',
    ...table.map((l, i) => `${i ? ids[i - 1].padEnd(18) : 'id'.padEnd(18)} ${l.map((cell, c) => (c === 0 || c >= 5 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')}`.trimEnd()),
    '',
    'ratio = median over runs of (this run s / its paired baseline run s); > 1 means slower than the baseline.',
    ...memoryLines(),
  ]
  process.stdout.write(`${out.join('\n')}\n`)
}

/** Peak RSS of the CLI's node process against what it streamed: flat means backpressure works. */
function memory(): Record<string, number> | undefined {
  const big = rows.find((r) => r.id === 'big-push')
  const shell = rows.find((r) => r.id === 'shell-true')
  if (!big?.bytes || !big.extra) return undefined
  const out: Record<string, number> = { payloadMiB: +(big.bytes / MiB).toFixed(1), pushPeakRssMiB: big.extra.peakRssMiB as number }
  if (big.extra.peakTreeRssMiB !== undefined) out.pushLargestProcessRssMiB = big.extra.peakTreeRssMiB as number
  const small = rows.find((r) => r.id === 'small-push')
  if (small?.bytes && small.extra) {
    out.smallPayloadMiB = +(small.bytes / MiB).toFixed(1)
    out.smallPushPeakRssMiB = small.extra.peakRssMiB as number
  }
  if (shell?.extra) out.shellTruePeakRssMiB = shell.extra.peakRssMiB as number
  out.rssOverPayload = +(out.pushPeakRssMiB / out.payloadMiB).toFixed(3)
  return out
}

function memoryLines(): string[] {
  const m = memory()
  if (!m) return []
  return [
    '',
    `memory: push of ${m.payloadMiB} MiB peaked at ${m.pushPeakRssMiB} MiB RSS in the CLI's node process` +
      (m.shellTruePeakRssMiB !== undefined ? ` (shell -- true: ${m.shellTruePeakRssMiB} MiB` : '') +
      (m.smallPushPeakRssMiB !== undefined ? `; push of ${m.smallPayloadMiB} MiB: ${m.smallPushPeakRssMiB} MiB` : '') +
      (m.shellTruePeakRssMiB !== undefined ? ')' : ''),
    ...(m.pushLargestProcessRssMiB !== undefined
      ? [`        largest process of the push's tree (node or git, GNU time): ${m.pushLargestProcessRssMiB} MiB`]
      : []),
  ]
}

async function main(): Promise<void> {
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' ')
  const started = new Date().toISOString()
  const info = await machine()
  try {
    if (opts['big-repo']) await pushScenario('big', 'big incompressible files', opts['big-repo'])
    if (opts['small-repo']) {
      const files = git(opts['small-repo'], ['ls-files']).split('\n').length
      await pushScenario('small', `${files} small files`, opts['small-repo'])
      await noopScenario(opts['small-repo'])
    } else if (opts['big-repo']) {
      await noopScenario(opts['big-repo'])
    }
    if (opts.closures) await copyScenario(opts.closures, opts['small-repo'] ?? opts['big-repo'] ?? process.cwd())
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
  const report = {
    date: started,
    instance,
    namespace: cluster.namespace,
    repeat,
    noopRepeat,
    chunkKiB: chunkBytes / 1024,
    machine: info,
    loadBefore,
    loadAfter: loadavg().map((l) => l.toFixed(2)).join(' '),
    results: rows,
    memory: memory(),
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  else printTable(report)
}

try {
  await main()
  process.exit(0)
} catch (error) {
  process.stderr.write(`bench.ts: ${(error as Error).stack ?? error}\n`)
  process.exit(1)
}
