// The trampoline command line: global options, the subcommands, and one place where
// errors become messages and exit codes.
import yargs, { type Argv } from 'yargs'
import { hideBin } from 'yargs/helpers'
import { formatError, ExitCode } from './errors.ts'
import { setVerbosity } from './log.ts'
import type { GlobalOptions } from './context.ts'
import { command as setup } from './commands/setup.ts'
import { command as status } from './commands/status.ts'
import { command as down } from './commands/down.ts'
import { command as clean } from './commands/clean.ts'
import { command as gc } from './commands/gc.ts'
import { command as pushTarball } from './commands/push-tarball.ts'
import { command as pushFlake } from './commands/push-flake.ts'
import { command as build } from './commands/build.ts'
import { command as shell } from './commands/shell.ts'
import { command as claude } from './commands/claude.ts'
import { command as sh } from './commands/sh.ts'
import { command as ssh } from './commands/ssh.ts'
import { command as proxy } from './commands/proxy.ts'
import { command as copyClosure } from './commands/copy-closure.ts'
import { command as maintenance } from './commands/maintenance.ts'
import { command as doctor } from './commands/doctor.ts'
import { protectShArgs } from './sh-args.ts'

/** Global options that take a value: `--name x sh ...` has `sh`, not `x`, as its command. */
const GLOBAL_VALUE_OPTIONS = new Set(['--kubeconfig', '--context', '--namespace', '-n', '--name'])

export function buildParser(argv: string[]): Argv<GlobalOptions> {
  return yargs(argv)
    .scriptName('trampoline')
    .usage('$0 <command> [options]\n\nRun Nix builds and agent sessions in a Kubernetes pod.')
    .option('kubeconfig', { type: 'string', describe: 'Path to the kubeconfig (default: $KUBECONFIG, ~/.kube/config)', global: true })
    .option('context', { type: 'string', describe: 'Kubeconfig context to use', global: true })
    .option('namespace', { alias: 'n', type: 'string', describe: 'Namespace (default: the context\'s, else "default")', global: true })
    .option('name', { type: 'string', describe: 'Instance name (default: the git repository\'s directory name)', global: true })
    .option('json', { type: 'boolean', describe: 'Machine-readable output on stdout', global: true })
    .option('verbose', { alias: 'v', type: 'boolean', describe: 'Say more about what happens', global: true })
    .option('quiet', { alias: 'q', type: 'boolean', describe: 'Only errors', global: true })
    .conflicts('verbose', 'quiet')
    .middleware((args) => setVerbosity(args.quiet ? 'quiet' : args.verbose ? 'verbose' : 'normal'))
    .command(setup)
    .command(status)
    .command(pushTarball)
    .command(pushFlake)
    .command(build)
    .command(shell)
    .command(claude)
    .command(sh)
    .command(ssh)
    .command(proxy)
    .command(copyClosure)
    .command(maintenance)
    .command(down)
    .command(clean)
    .command(gc)
    .command(doctor)
    .completion('completion', 'Print a shell completion script (bash/zsh): trampoline completion >> ~/.bashrc')
    .demandCommand(1, 'Name a command; see trampoline --help.')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, error, parser) => {
      if (error) throw error
      process.stderr.write(`${parser.help()}\n\ntrampoline: ${message}\n`)
      process.exit(ExitCode.usage)
    }) as unknown as Argv<GlobalOptions>
}

export async function main(argv = hideBin(process.argv)): Promise<void> {
  try {
    // `sh` takes its arguments verbatim, as /bin/sh does.
    await buildParser(protectShArgs(argv, GLOBAL_VALUE_OPTIONS)).parseAsync()
  } catch (error) {
    const { text, exitCode } = formatError(error)
    if (text) process.stderr.write(`${text}\n`)
    process.exitCode = exitCode
  }
}

if (import.meta.main) await main()
