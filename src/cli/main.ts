import { Command, CommanderError } from 'commander';
import { CoterieError } from '../protocol/errors.js';
import { registerTrackerCommand } from './commands/tracker.js';

/**
 * The `coterie` entry point. Each area registers its subcommands from its own
 * module under ./commands, so main stays a table of contents.
 */
export async function main(argv: string[]): Promise<number> {
  const program = new Command('coterie')
    .description('Group-based peer-to-peer file and message sharing')
    .exitOverride()
    .showHelpAfterError();
  registerTrackerCommand(program);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof CoterieError) {
      process.stderr.write(`coterie: ${err.message} [${err.code}]\n`);
      return 1;
    }
    throw err;
  }
}
