import { findCommand, resolveDataDir } from '../peer/client.js';
import { CoterieError } from '../protocol/errors.js';
import { takeGlobals } from './globals.js';
import { shown } from './sanitize.js';

// Subcommand modules load lazily: `coterie <command>` runs once per user command and
// must not pay for loading the tracker, the wire protocol and fastify.

/**
 * `coterie <command> [args…] [--json] [--data-dir DIR]` sends a command to the daemon of DIR
 * (one commander subcommand per row of the command table, peer/control/commands.ts, built in
 * ./program.ts); tracker, peer, relay, demo, completion and ui are subcommands of their own.
 */

/** Process-level subcommands; any other word is a peer command (or UNKNOWN_COMMAND). */
const SUBCOMMANDS = new Set(['tracker', 'peer', 'relay', 'demo', 'help', 'completion', 'ui']);

/** A usage error the way every other error is printed: one line, its code; exit 2. */
function usageError(message: string): number {
  process.stderr.write(`coterie: ${shown(message)} [USAGE]\n`);
  return 2;
}

/** `coterie --data-dir D peer`: the daemons read their own --data-dir, so it goes to them. */
function daemonLine(lead: ReturnType<typeof takeGlobals>): ReturnType<typeof takeGlobals> {
  const [first, ...rest] = lead.words;
  if (lead.dataDir === undefined || (first !== 'peer' && first !== 'tracker')) return lead;
  return { ...lead, words: [first, '--data-dir', lead.dataDir, ...rest] };
}

export async function main(argv: string[]): Promise<number> {
  let lead: ReturnType<typeof takeGlobals>;
  try {
    lead = takeGlobals(argv, true);
  } catch (err) {
    if (err instanceof CoterieError) return usageError(err.message);
    throw err;
  }
  const first = lead.words[0];
  if (first === undefined && argv.length > 0) {
    return usageError("give a command after --data-dir/--json: 'coterie help' lists them");
  }
  if (first === '__complete') {
    const { complete } = await import('./completion.js');
    const found = await complete(lead.words.slice(1));
    if (found.length > 0) process.stdout.write(`${found.join('\n')}\n`);
    return 0;
  }
  if (first === 'ui') {
    const { runUiCommand } = await import('./commands/ui.js');
    return runUiCommand(resolveDataDir(lead.dataDir), lead.words.slice(1));
  }
  const spec = first === undefined ? undefined : findCommand(first);
  if (first !== undefined && spec === undefined && !first.startsWith('-') && !SUBCOMMANDS.has(first)) {
    const { runClientCommand } = await import('./client.js');
    return runClientCommand(first, lead.words.slice(1), {
      dataDir: resolveDataDir(lead.dataDir),
      json: lead.json,
    });
  }
  // A peer command takes the global options anywhere on its line; the daemons keep their own.
  let globals: ReturnType<typeof takeGlobals>;
  try {
    globals = spec === undefined ? daemonLine(lead) : takeGlobals(argv);
  } catch (err) {
    if (err instanceof CoterieError) return usageError(err.message);
    throw err;
  }
  const { runProgram } = await import('./program.js');
  return runProgram(globals.words, {
    dataDir: globals.dataDir,
    json: globals.json,
  });
}
