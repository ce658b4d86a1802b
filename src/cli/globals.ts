import { CoterieError } from '../protocol/errors.js';

/** The options of every peer command: `--json` and `--data-dir DIR`, taken out of its words. */
export interface Globals {
  dataDir?: string;
  json: boolean;
  /** What is left, in order, the lone '--' (if any) and every word after it kept. */
  words: string[];
}

/**
 * Takes `--json` and `--data-dir DIR` (or `--data-dir=DIR`) out of `argv` wherever they stand
 * before a lone '--' (`coterie list_groups --json` as `coterie --json list_groups`); with
 * `leadingOnly`, only those before the first other word (the daemons' own flags are theirs).
 * The '--' stays: the command table's parser reads every word after it as a value, which is
 * how a message holding '--json' is written (`send_msg bob -- see --json`).
 */
export function takeGlobals(argv: readonly string[], leadingOnly = false): Globals {
  const out: Globals = { json: false, words: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--' || (leadingOnly && out.words.length > 0)) {
      out.words.push(...argv.slice(i));
      break;
    }
    if (a === '--json') out.json = true;
    else if (a === '--data-dir') {
      out.dataDir = argv[++i];
      if (out.dataDir === undefined) throw new CoterieError('USAGE', '--data-dir needs a directory');
    } else if (a.startsWith('--data-dir=')) out.dataDir = a.slice('--data-dir='.length);
    else out.words.push(a);
  }
  return out;
}
