// The trampoline command line: global options, the subcommands, and one place where
// errors become messages and exit codes.
import yargs, { type Argv } from 'yargs'
import { hideBin } from 'yargs/helpers'
import { formatError, ExitCode } from './errors.ts'
import { setVerbosity } from './log.ts'
import type { GlobalOptions } from './context.ts'
import { COMMANDS, lazyCommand } from './commands/index.ts'
import { packageVersion } from './package-dir.ts'
import { protectShArgs } from './sh-args.ts'

/** Global options that take a value: `--name x sh ...` has `sh`, not `x`, as its command. */
const GLOBAL_VALUE_OPTIONS = new Set(['--kubeconfig', '--context', '--namespace', '-n', '--name'])

export function buildParser(argv: string[]): Argv<GlobalOptions> {
  const parser = yargs(argv)
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
  // Each command's module (and @kubernetes/client-node) loads only when that command runs.
  for (const entry of COMMANDS) parser.command(lazyCommand(entry))
  return parser
    .completion('completion', 'Print a shell completion script (bash/zsh): trampoline completion >> ~/.bashrc')
    .demandCommand(1, 'Name a command; see trampoline --help.')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    // Not yargs' guess, which reads the package.json nearest the working directory once bundled.
    .version(packageVersion())
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
