// Loaded into a CLI process by the benchmark (NODE_OPTIONS=--import=<this file>): at exit it
// appends the process's own peak RSS and CPU time (getrusage, RUSAGE_SELF: children such as
// git are not counted) as one JSON line to $TRAMPOLINE_BENCH_RSS_FILE. Inert without it.
import { appendFileSync } from 'node:fs'

const out = process.env.TRAMPOLINE_BENCH_RSS_FILE
if (out) {
  // Only this process reports: children (git, nix, the ssh proxy) inherit our environment.
  delete process.env.TRAMPOLINE_BENCH_RSS_FILE
  process.on('exit', () => {
    const usage = process.resourceUsage()
    const line = { pid: process.pid, maxRssKiB: usage.maxRSS, userSeconds: usage.userCPUTime / 1e6, systemSeconds: usage.systemCPUTime / 1e6 }
    appendFileSync(out, `${JSON.stringify(line)}\n`)
  })
}
