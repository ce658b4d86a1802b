import { Command, CommanderError } from 'commander';
import { PACKAGE_VERSION } from '../os/package-version.js';
import { aliasOf, COMMANDS, type CommandSpec, findCommand, resolveDataDir } from '../peer/client.js';
import { CoterieError } from '../protocol/errors.js';
import { runClientCommand } from './client.js';
import { completionScript, SHELLS } from './completion.js';
import { commandDetails, commandHelp } from './help.js';
import { LIVE } from './live.js';
import { shown } from './sanitize.js';

/** The global options of the peer commands, already taken out of the line (./globals.ts). */
export interface ProgramGlobals {
  dataDir?: string;
  json: boolean;
}

/** What needs none of the daemons' modules. */
const LEAN = new Set(['completion', '-V', '--version']);

type Registrar = (program: Command) => void;

// Only the subcommand asked for is loaded (`coterie peer` must not load the tracker's fastify and kysely).
const DAEMONS: Record<string, () => Promise<Registrar>> = {
  tracker: async () => (await import('./commands/tracker.js')).registerTrackerCommand,
  peer: async () => (await import('./commands/peer.js')).registerPeerCommand,
  demo: async () => (await import('./commands/demo.js')).registerDemoCommand,
  relay: async () => (await import('./commands/relay.js')).registerRelayCommand,
};

/**
 * One commander subcommand per row of the command table, with its kebab-case alias: commander
 * dispatches and answers `--help` (the row's syntax, example and errors); the row's own parser
 * reads the words, as the shell and the control API do, so the table stays the one source.
 */
function addTableCommand(
  program: Command,
  spec: CommandSpec,
  words: string[],
  globals: ProgramGlobals,
): void {
  const live = (LIVE as Record<string, (typeof LIVE)[keyof typeof LIVE]>)[spec.name];
  const cmd = program
    .command(spec.name, { hidden: true })
    .argument('[words...]')
    .allowUnknownOption()
    .allowExcessArguments()
    .configureHelp({ formatHelp: () => `${commandDetails(spec, live?.usage)}\n` });
  if (aliasOf(spec.name) !== spec.name) cmd.alias(aliasOf(spec.name));
  if (live !== undefined) cmd.option(`--${live.flag}`, live.what);
  cmd.action(async (_parsed: string[], opts: Record<string, boolean>) => {
    const end = words.indexOf('--');
    const liveFlag = `--${live?.flag}`;
    // The live flag is the CLI's, not the daemon's: it leaves the words (before a lone '--').
    const own = live === undefined ? words : words.filter((w, i) => w !== liveFlag || (end >= 0 && i > end));
    process.exitCode = await runClientCommand(spec.name, own, {
      dataDir: resolveDataDir(globals.dataDir),
      json: globals.json,
      live: live !== undefined && opts[live.flag] === true,
    });
  });
}

/** The whole `coterie` program for the line `argv` (its first word picks the modules loaded). */
export async function buildProgram(argv: string[], globals: ProgramGlobals): Promise<Command> {
  const first = argv[0];
  // The daemons' modules are loaded for themselves and for the help that lists them, never for
  // a peer command (TypeBox and jose are the daemon's, not a client's: test/unit/cli-startup).
  const lean = first !== undefined && (findCommand(first) !== undefined || LEAN.has(first));
  const wanted = first !== undefined && first in DAEMONS ? [first] : lean ? [] : Object.keys(DAEMONS);
  const register = await Promise.all(wanted.map((name) => DAEMONS[name]!()));
  const program = new Command('coterie')
    .description('Group-based peer-to-peer file and message sharing')
    .usage('<command> [args…] [--json] [--data-dir DIR]')
    .version(PACKAGE_VERSION, '-V, --version', 'prints the version of coterie')
    // The program's options only before a command: `download_file … --version 1` is the command's.
    .enablePositionalOptions()
    .exitOverride()
    // Commander's own errors (unknown option, missing value) as one coded line, like ours.
    .configureOutput({
      outputError: (text, write) => write(`coterie: ${text.replace(/^error: /, '').trim()} [USAGE]\n`),
    })
    .showHelpAfterError('(add --help for the options)')
    .addHelpText(
      'after',
      () => `
Peer commands go to the running daemon of the data directory (--data-dir DIR,
else $COTERIE_DATA_DIR, else per user); --json prints machine-readable answers
and errors. Both are accepted anywhere on the line; after a lone '--' every word
is taken as written. Each command is also spelled with hyphens (download-file);
'coterie <command> --help' shows its syntax, an example and its errors.

${commandHelp()}`,
    );
  for (const r of register) r(program);
  const words = argv.slice(1);
  for (const spec of COMMANDS) addTableCommand(program, spec, words, globals);
  program
    .command('completion')
    .description(`prints a shell completion script (${SHELLS.join(', ')})`)
    .argument('<shell>', SHELLS.join(' | '))
    .action((shell: string) => {
      process.stdout.write(completionScript(shell));
    });
  return program;
}

export async function runProgram(argv: string[], globals: ProgramGlobals): Promise<number> {
  const program = await buildProgram(argv, globals);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help or the version asked for is a success; help shown for want of a command, or anything
      // else commander refused, is a usage error.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof CoterieError) {
      process.stderr.write(`coterie: ${shown(err.message)} [${err.code}]\n`);
      return err.code === 'USAGE' ? 2 : 1;
    }
    throw err;
  }
}
