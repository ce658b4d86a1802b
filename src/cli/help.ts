import { COMMANDS, usageOf } from '../peer/client.js';
import { table } from './format.js';

/** The command list shown by `help` in the shell and `coterie --help`; one command's row with a name. */
export function commandHelp(name?: string): string {
  const commands = name === undefined ? COMMANDS : COMMANDS.filter((c) => c.name === name);
  return table(
    ['COMMAND', 'WHAT IT DOES'],
    [
      ...commands.map((c) => [usageOf(c), c.summary]),
      ...(name === undefined ? [['help', 'shows this list']] : []),
    ],
  );
}
