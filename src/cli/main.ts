import { findCommand, resolveDataDir } from '../peer/client.js';
import { CoterieError } from '../protocol/errors.js';
import { commandHelp } from './help.js';
import { shown } from './sanitize.js';

// Subcommand modules load lazily: `coterie <command>` runs once per user command and
// must not pay for loading the tracker, the wire protocol and fastify.

/**
 * `coterie [--data-dir DIR] [--json] <command> [args…]` sends a command to
 * the daemon of DIR (the command table of peer/control/commands.ts); everything else
 * (tracker, peer, demo) is a subcommand registered from ./commands.
 */
function splitGlobals(argv: string[]): { dataDir?: string; json: boolean; rest: string[] } {
  let dataDir: string | undefined;
  let json = false;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--data-dir') {
      dataDir = argv[++i];
      if (dataDir === undefined) throw new CoterieError('USAGE', '--data-dir needs a directory');
    } else if (a.startsWith('--data-dir=')) dataDir = a.slice('--data-dir='.length);
    else break;
  }
  return { dataDir, json, rest: argv.slice(i) };
}

/** Process-level subcommands; any other word is a peer command (or UNKNOWN_COMMAND). */
const SUBCOMMANDS = new Set(['tracker', 'peer', 'demo', 'help', 'ui']);

/** A usage error the way every other error is printed: one line, its code; exit 2. */
function usageError(message: string): number {
  process.stderr.write(`coterie: ${shown(message)} [USAGE]\n`);
  return 2;
}

export async function main(argv: string[]): Promise<number> {
  let globals: ReturnType<typeof splitGlobals>;
  try {
    globals = splitGlobals(argv);
  } catch (err) {
    if (err instanceof CoterieError) return usageError(err.message);
    throw err;
  }
  const first = globals.rest[0];
  if (first === undefined && argv.length > 0) {
    return usageError("give a command after --data-dir/--json: 'coterie help' lists them");
  }
  const isSubcommand = first === undefined || first.startsWith('-') || SUBCOMMANDS.has(first);
  if (first !== undefined && (findCommand(first) !== undefined || !isSubcommand)) {
    const { runClientCommand } = await import('./client.js');
    return runClientCommand(first, globals.rest.slice(1), {
      dataDir: resolveDataDir(globals.dataDir),
      json: globals.json,
    });
  }
  if (first === 'ui') {
    const { runUiCommand } = await import('./commands/ui.js');
    return runUiCommand(resolveDataDir(globals.dataDir), globals.rest.slice(1));
  }
  if (first === 'help' && globals.rest.length === 1) {
    process.stdout.write(`${commandHelp()}\n`);
    return 0;
  }
  // `help download_file`: that command's line of the list (commander knows only tracker, peer, demo).
  const asked = first === 'help' ? globals.rest[1] : undefined;
  if (asked !== undefined && findCommand(asked) !== undefined) {
    process.stdout.write(`${commandHelp(asked)}\n`);
    return 0;
  }
  const { Command, CommanderError } = await import('commander');
  // Only the subcommand asked for is loaded (`coterie peer` must not load the tracker's fastify and kysely).
  const registrars: Record<string, () => Promise<(program: InstanceType<typeof Command>) => void>> = {
    tracker: async () => (await import('./commands/tracker.js')).registerTrackerCommand,
    peer: async () => (await import('./commands/peer.js')).registerPeerCommand,
    demo: async () => (await import('./commands/demo.js')).registerDemoCommand,
  };
  const wanted = first !== undefined && first in registrars ? [first] : Object.keys(registrars);
  const register = await Promise.all(wanted.map((name) => registrars[name]!()));
  const program = new Command('coterie')
    .description('Group-based peer-to-peer file and message sharing')
    .usage('[--data-dir DIR] [--json] <command> [args…]  |  tracker | peer | demo [options]')
    .exitOverride()
    // Commander's own errors (unknown option, missing value) as one coded line, like ours.
    .configureOutput({
      outputError: (text, write) => write(`coterie: ${text.replace(/^error: /, '').trim()} [USAGE]\n`),
    })
    .showHelpAfterError('(add --help for the options)')
    .addHelpText(
      'after',
      `\nPeer commands, sent to the running daemon of the data directory (--data-dir DIR, else
$COTERIE_DATA_DIR, else per user); --json prints machine-readable answers and errors:\n${commandHelp()}`,
    );
  for (const r of register) r(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help asked for is a success; help shown for want of a command, or anything else
      // commander refused, is a usage error.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : 2;
    }
    if (err instanceof CoterieError) {
      process.stderr.write(`coterie: ${shown(err.message)} [${err.code}]\n`);
      return err.code === 'USAGE' ? 2 : 1;
    }
    throw err;
  }
}
