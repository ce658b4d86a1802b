import { COMMANDS, usageOf } from '../peer/client.js';
import { table } from './format.js';

/** The command list shown by `help` in the shell and `coterie --help`. */
export function commandHelp(): string {
  return table(
    ['COMMAND', 'WHAT IT DOES'],
    [...COMMANDS.map((c) => [usageOf(c), c.summary]), ['help', 'shows this list']],
  );
}
