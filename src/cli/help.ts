import { aliasOf, COMMANDS, type CommandSpec, usageOf } from '../peer/client.js';
import { table, terminalWidth, wrapText } from './text-table.js';

/** The command list shown by `help` in the shell and `coterie --help`, wrapped to `width`. */
export function commandHelp(width = terminalWidth()): string {
  return table(
    ['COMMAND', 'WHAT IT DOES'],
    [...COMMANDS.map((c) => [usageOf(c), c.summary]), ['help', 'shows this list']],
    width,
  );
}

/** What every command may answer beside its own errors. */
export const COMMON_ERRORS = ['USAGE', 'DAEMON_NOT_RUNNING'] as const;

/**
 * All of `coterie <command> --help`: what it does, its syntax (with the CLI's live mode, e.g.
 * `--follow`), an example to paste and the error codes it can answer.
 */
export function commandDetails(spec: CommandSpec, live?: string, width = terminalWidth()): string {
  const indented = (text: string) => wrapText(text, width - 2).map((l) => `  ${l}`);
  const usages = [...usageOf(spec).split(' | '), ...(live === undefined ? [] : [`${spec.name} ${live}`])];
  return [
    ...usages.map((u, i) => `${i === 0 ? 'Usage:' : '   or:'} coterie ${u}`),
    '',
    ...indented(spec.summary),
    '',
    'Example:',
    `  coterie ${spec.example ?? spec.name}`,
    '',
    'Errors (the [CODE] that ends the error line; the README lists them all):',
    ...indented([...(spec.errors ?? []), ...COMMON_ERRORS].join(', ')),
    '',
    ...indented(
      `Also spelled ${aliasOf(spec.name)}. Global options, accepted anywhere on the line: --json (machine-readable answers and errors), --data-dir DIR. After a lone '--' every word is taken as written: coterie send_msg bob -- a message that holds --json.`,
    ),
  ].join('\n');
}
