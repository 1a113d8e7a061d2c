// The measuring half of test/bench/startup.sh (which builds the package and makes and
// cleans the instance). Every number is a ratio against a baseline run in the same round,
// back to back, on the same Node (this process's), never an absolute threshold:
//
//   trampoline --version, --help   vs  node -e 0
//   peak RSS of --version          (node -e 0's beside it)
//   trampoline shell -- true       vs  kubectl exec <pod> -c user -- true  (with --name; also --no-mux)
//   trampoline-sh -c true          vs  kubectl exec <pod> -c user -- sh -c true  (with --repo: a
//                                      repository whose work tree the pod already has)
//
// Usage: node test/bench/startup.ts --package DIR [--sources DIR] [--runs N]
//          [--name INSTANCE --pod POD [--namespace NS] [--repo DIR]] [--json]
// --package: a directory holding bin/trampoline.js and the built dist/ (as npm installs it);
// --sources: a checkout whose bin/trampoline.js runs scripts/ (no dist/), measured as well.
// Rounds run each command once, in an order rotated every round; ratio = median over
// rounds of (command / the round's baseline). Peak RSS and CPU come from GNU time
// (/usr/bin/time, Debian's `time`), in extra runs for the start-up commands (its own
// fork would count against a 20 ms baseline) and in every run for the cluster pair.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const GNU_TIME = '/usr/bin/time'

const { values: opts } = parseArgs({
  options: {
    package: { type: 'string' },
    sources: { type: 'string' },
    runs: { type: 'string', default: '11' },
    name: { type: 'string' },
    pod: { type: 'string' },
    namespace: { type: 'string' },
    repo: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
})
if (!opts.package) {
  process.stderr.write('startup.ts: --package DIR is required (run test/bench/startup.sh, which builds one)\n')
  process.exit(2)
}
const runs = Number(opts.runs)
if (!Number.isInteger(runs) || runs < 3) {
  process.stderr.write(`startup.ts: --runs must be an integer >= 3 (got ${opts.runs})\n`)
  process.exit(2)
}
const node = process.execPath
const scratch = mkdtempSync(join(tmpdir(), 'trampoline-startup-'))
const gnuTime = existsSync(GNU_TIME)

interface Command {
  id: string
  argv: string[]
  env?: NodeJS.ProcessEnv
  cwd?: string
}

interface Run {
  seconds: number
  code: number
  rssKiB?: number
  cpuSeconds?: number
}

function say(message: string): void {
  process.stderr.write(`[startup] ${message}\n`)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** One run, stdout and stderr to /dev/null (--help sees no terminal: 100 columns). */
function run(command: Command, timed = false): Run {
  const out = join(scratch, 'time.txt')
  const argv = timed && gnuTime ? [GNU_TIME, '-f', '%e %U %S %M', '-o', out, ...command.argv] : command.argv
  const started = process.hrtime.bigint()
  const result = spawnSync(argv[0], argv.slice(1), { stdio: 'ignore', cwd: command.cwd, env: { ...process.env, ...command.env } })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const code = result.status ?? 128
  if (!(timed && gnuTime)) return { seconds, code }
  // GNU time prints "Command exited with non-zero status N" first when it did.
  const fields = readFileSync(out, 'utf8').trim().split('\n').pop()!.split(' ').map(Number)
  return { seconds, code, cpuSeconds: fields[1] + fields[2], rssKiB: fields[3] }
}

/** `rounds` rounds of every command, rotated; per command its runs, in round order. */
function rounds(commands: Command[], count: number, timed: boolean): Map<string, Run[]> {
  const results = new Map<string, Run[]>(commands.map((c) => [c.id, []]))
  for (let round = 0; round < count; round++) {
    for (let i = 0; i < commands.length; i++) {
      const command = commands[(round + i) % commands.length]
      const result = run(command, timed)
      if (result.code !== 0) throw new Error(`${command.id} exited ${result.code}: ${command.argv.join(' ')}`)
      results.get(command.id)!.push(result)
    }
  }
  return results
}

interface Row {
  id: string
  what: string
  medianSeconds: number
  vs?: string
  ratio?: number
  rssKiB?: number
  cpuSeconds?: number
  runs: number[]
}

function row(id: string, what: string, results: Map<string, Run[]>, baseline?: string): Row {
  const mine = results.get(id)!
  const base = baseline ? results.get(baseline)! : undefined
  const rss = mine.map((r) => r.rssKiB).filter((x): x is number => x !== undefined)
  const cpu = mine.map((r) => r.cpuSeconds).filter((x): x is number => x !== undefined)
  return {
    id,
    what,
    medianSeconds: median(mine.map((r) => r.seconds)),
    ...(base ? { vs: baseline, ratio: median(mine.map((r, i) => r.seconds / base[i].seconds)) } : {}),
    ...(rss.length ? { rssKiB: median(rss) } : {}),
    ...(cpu.length ? { cpuSeconds: median(cpu) } : {}),
    runs: mine.map((r) => Number(r.seconds.toFixed(4))),
  }
}

function machine(): Record<string, string | number> {
  const cpu = cpus()
  return {
    cpus: `${cpu.length} x ${cpu[0]?.model ?? '?'}`,
    memoryGiB: Number((totalmem() / 2 ** 30).toFixed(1)),
    kernel: release(),
    node: process.version,
  }
}

const rows: Row[] = []
const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' ')
try {
  // --- start-up: no cluster -------------------------------------------------------------
  const pkgBin = join(opts.package, 'bin', 'trampoline.js')
  const startup: Command[] = [
    { id: 'node', argv: [node, '-e', '0'] },
    { id: 'version', argv: [node, pkgBin, '--version'] },
    { id: 'help', argv: [node, pkgBin, '--help'] },
  ]
  if (opts.sources) {
    const srcBin = join(opts.sources, 'bin', 'trampoline.js')
    startup.push({ id: 'sources-version', argv: [node, srcBin, '--version'] }, { id: 'sources-help', argv: [node, srcBin, '--help'] })
  }
  say(`start-up: ${runs} rounds of ${startup.map((c) => c.id).join(', ')} (after 2 warm-up rounds: V8's compile cache)`)
  rounds(startup, 2, false)
  const times = rounds(startup, runs, false)
  rows.push(row('node', 'node -e 0', times))
  rows.push(row('version', 'trampoline --version (package)', times, 'node'))
  rows.push(row('help', 'trampoline --help (package)', times, 'node'))
  if (opts.sources) {
    rows.push(row('sources-version', 'trampoline --version (checkout, TypeScript sources)', times, 'node'))
    rows.push(row('sources-help', 'trampoline --help (checkout, TypeScript sources)', times, 'node'))
  }
  if (gnuTime) {
    const memory = rounds(startup.slice(0, 2), 3, true)
    for (const id of ['node', 'version']) {
      const r = rows.find((x) => x.id === id)!
      r.rssKiB = median(memory.get(id)!.map((m) => m.rssKiB!))
      r.cpuSeconds = median(memory.get(id)!.map((m) => m.cpuSeconds!))
    }
  } else {
    say(`no ${GNU_TIME} (Debian: apt-get install time): no peak RSS`)
  }
  // The first start after an install or upgrade, before V8's compile cache has the code.
  const cold = rounds([startup[0], { ...startup[1], id: 'version-cold', env: { NODE_DISABLE_COMPILE_CACHE: '1' } }], runs, false)
  rows.push(row('version-cold', 'trampoline --version, no compile cache', cold, 'node'))

  // --- one command in the pod -----------------------------------------------------------
  if (opts.name && opts.pod) {
    const ns = opts.namespace ? ['--namespace', opts.namespace] : []
    const pair: Command[] = [
      { id: 'kubectl-exec', argv: ['kubectl', 'exec', ...(opts.namespace ? ['-n', opts.namespace] : []), opts.pod, '-c', 'user', '--', 'true'] },
      { id: 'shell-true', argv: [node, pkgBin, 'shell', '--name', opts.name, ...ns, '--', 'true'] },
      { id: 'shell-true-direct', argv: [node, pkgBin, 'shell', '--no-mux', '--name', opts.name, ...ns, '--', 'true'] },
    ]
    say(`cluster: ${runs} rounds of kubectl exec ${opts.pod} -c user -- true and trampoline shell -- true (after 1 warm-up round)`)
    rounds(pair, 1, gnuTime)
    const pod = rounds(pair, runs, gnuTime)
    rows.push(row('kubectl-exec', `kubectl exec ${opts.pod} -c user -- true`, pod))
    rows.push(row('shell-true', 'trampoline shell -- true (package)', pod, 'kubectl-exec'))
    rows.push(row('shell-true-direct', 'trampoline shell --no-mux -- true (package, no helper)', pod, 'kubectl-exec'))

    if (opts.repo) {
      // trampoline-sh -c true from a repository whose work tree the pod already has.
      const shEnv = { TRAMPOLINE_NAME: opts.name, ...(opts.namespace ? { TRAMPOLINE_NAMESPACE: opts.namespace } : {}) }
      const shPair: Command[] = [
        { id: 'kubectl-exec-sh', argv: ['kubectl', 'exec', ...(opts.namespace ? ['-n', opts.namespace] : []), opts.pod, '-c', 'user', '--', 'sh', '-c', 'true'] },
        { id: 'sh-true', argv: [join(opts.package, 'bin', 'trampoline-sh'), '-c', 'true'], env: shEnv, cwd: opts.repo },
        { id: 'sh-true-direct', argv: [join(opts.package, 'bin', 'trampoline-sh'), '-c', 'true'], env: { ...shEnv, TRAMPOLINE_MUX: '0' }, cwd: opts.repo },
      ]
      say(`cluster: ${runs} rounds of kubectl exec ${opts.pod} -c user -- sh -c true and trampoline-sh -c true, unchanged tree (after 1 warm-up round)`)
      rounds(shPair, 1, gnuTime)
      const sh = rounds(shPair, runs, gnuTime)
      rows.push(row('kubectl-exec-sh', `kubectl exec ${opts.pod} -c user -- sh -c true`, sh))
      rows.push(row('sh-true', 'trampoline-sh -c true, unchanged tree (package)', sh, 'kubectl-exec-sh'))
      rows.push(row('sh-true-direct', 'trampoline-sh -c true, TRAMPOLINE_MUX=0 (package, no helper)', sh, 'kubectl-exec-sh'))
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true })
}

const report = { date: new Date().toISOString(), machine: machine(), loadBefore, loadAfter: loadavg().map((l) => l.toFixed(2)).join(' '), runs, rows }
if (opts.json) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
} else {
  const mib = (kib?: number) => (kib === undefined ? '' : (kib / 1024).toFixed(1))
  const lines = [
    `# trampoline start-up, ${report.date}`,
    ...Object.entries(report.machine).map(([k, v]) => `  ${k}: ${v}`),
    `  load average before/after: ${report.loadBefore} / ${report.loadAfter}; ${runs} rounds, medians`,
    '',
    `${'id'.padEnd(16)} ${'median s'.padStart(9)} ${'ratio'.padStart(6)} ${'vs'.padEnd(13)} ${'peak MiB'.padStart(8)} ${'CPU s'.padStart(6)}  what`,
    ...rows.map((r) =>
      [
        r.id.padEnd(16),
        r.medianSeconds.toFixed(3).padStart(9),
        (r.ratio === undefined ? '' : r.ratio.toFixed(2)).padStart(6),
        (r.vs ?? '').padEnd(13),
        mib(r.rssKiB).padStart(8),
        (r.cpuSeconds === undefined ? '' : r.cpuSeconds.toFixed(2)).padStart(6),
        ` ${r.what}`,
      ].join(' '),
    ),
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
}
