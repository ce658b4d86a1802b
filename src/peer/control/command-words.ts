import { isAbsolute, resolve } from 'node:path';
import { parseDays, parseHours, parseSlotMode } from '../../core/week-schedule.js';
import { CoterieError } from '../../protocol/errors.js';
import { assertName, assertNewName, isValidFileName, MESSAGE_ID_PATTERN } from '../../protocol/names.js';
import { parseByteSize } from '../../protocol/sizes.js';
import type { CommandSpec, ParamSpec, ParsedArgs } from './commands.js';

/**
 * The words of one command against its row of the command table (commands.ts): its usage line,
 * the split into positionals, flags and options, the checks of each value, and the rewriting of
 * paths for a daemon that runs in another directory.
 */

/** What an option's value is called in a usage line (N unless named here). */
const OPTION_VALUES: Record<string, string> = {
  group: 'G',
  from: 'SEQ',
  ttl: 'DURATION',
  only: 'GLOB',
  exclude: 'GLOB',
  upload: 'RATE',
  download: 'RATE',
};

/** download_file's --limit is a rate; show_messages' and fetch_messages' a count. */
function valueName(spec: CommandSpec, option: string): string {
  if (option === 'limit' && spec.name === 'download_file') return 'RATE';
  return OPTION_VALUES[option] ?? 'N';
}

export function usageOf(spec: CommandSpec): string {
  const flags =
    (spec.options ?? []).map((o) => ` [--${o} ${valueName(spec, o)}]`).join('') +
    (spec.flags ?? []).map((f) => ` [--${f}]`).join('');
  return spec.forms
    .map(
      (form) =>
        [spec.name, ...form.map((x) => (isRest(x) ? `<${x.name}…>` : `<${x.name}>`))].join(' ') + flags,
    )
    .join(' | ');
}

function checkValue(param: ParamSpec, value: string): void {
  switch (param.kind) {
    case 'user':
      (param.creates ? assertNewName : assertName)('user id', value);
      return;
    case 'group':
      (param.creates ? assertNewName : assertName)('group id', value);
      return;
    case 'file_name':
      if (!isValidFileName(value)) {
        throw new CoterieError(
          'INVALID_NAME',
          `invalid file name ${JSON.stringify(value)}: no slashes or control characters`,
        );
      }
      return;
    case 'password':
      if (value.length === 0) throw new CoterieError('USAGE', 'the password is empty');
      return;
    case 'topic':
      (param.creates ? assertNewName : assertName)('topic', value);
      return;
    case 'message_id':
      if (!new RegExp(MESSAGE_ID_PATTERN).test(value)) {
        throw new CoterieError('USAGE', `'${value.slice(0, 80)}' is not a message id (32 hex characters)`);
      }
      return;
    case 'count':
      wholeNumber(param.name, value, 0);
      return;
    case 'text':
      if (value.trim().length === 0) throw new CoterieError('USAGE', 'the message is empty');
      return;
    case 'source_path':
    case 'dest_path':
      if (value.length === 0) throw new CoterieError('PATH_INVALID', `empty ${param.name}`);
      return;
    case 'size':
      parseQuota(value);
      return;
    case 'replicas':
      parseReplicaCount(param.name, value);
      return;
    case 'download':
      if (!/^#?\d+$/.test(value) && !isValidFileName(value)) {
        throw new CoterieError('USAGE', `${JSON.stringify(value)} is neither a download id nor a file name`);
      }
      return;
    case 'globs':
      if (value.split('\n').some((g) => g.trim() === ''))
        throw new CoterieError('USAGE', 'an empty glob selects nothing');
      return;
    case 'days':
      parseDays(value);
      return;
    case 'hours':
      parseHours(value);
      return;
    case 'slot_mode':
      parseSlotMode(value);
      return;
  }
}

/** A parameter that takes every word after it: a message, or select_files' globs. */
function isRest(param: ParamSpec): boolean {
  return param.kind === 'text' || param.kind === 'globs';
}

/** Words split into positionals, flags and valued options; a text parameter takes every word after it. */
interface SplitWords {
  positional: string[];
  flags: Set<string>;
  options: Record<string, string>;
  repeated: Record<string, string[]>;
  /** Index in `words` of each positional. */
  at: number[];
}

function restIndex(spec: CommandSpec): number {
  const lengths = spec.forms.map((f) => f.findIndex(isRest)).filter((i) => i >= 0);
  return lengths.length === 0 ? Number.POSITIVE_INFINITY : Math.min(...lengths);
}

function splitCommandWords(spec: CommandSpec, words: readonly string[], strict: boolean): SplitWords {
  const out: SplitWords = { positional: [], flags: new Set(), options: {}, repeated: {}, at: [] };
  const rest = restIndex(spec);
  // After a lone '--' every word is a value, '--json' and all (the CLI's way to write such a
  // message); once a message has begun, a '--' in it is its own word.
  let literal = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '--' && !literal && out.positional.length <= rest) {
      literal = true;
      continue;
    }
    if (literal || out.positional.length >= rest) {
      // the message itself: '--' and all
      out.positional.push(w);
      out.at.push(i);
      continue;
    }
    if (w.startsWith('--') && w.length > 2) {
      const eq = w.indexOf('=');
      const name = eq > 0 ? w.slice(2, eq) : w.slice(2);
      if ((spec.options ?? []).includes(name)) {
        const value = eq > 0 ? w.slice(eq + 1) : words[++i];
        if (value === undefined) {
          if (!strict) continue;
          throw new CoterieError('USAGE', `--${name} needs a value: usage: ${usageOf(spec)}`);
        }
        out.options[name] = value;
        out.repeated[name] = [...(out.repeated[name] ?? []), value];
        continue;
      }
      if ((spec.flags ?? []).includes(name) && eq < 0) {
        out.flags.add(name);
        continue;
      }
      if (strict)
        throw new CoterieError('USAGE', `unknown option ${w} for ${spec.name}: usage: ${usageOf(spec)}`);
      continue;
    }
    out.positional.push(w);
    out.at.push(i);
  }
  return out;
}

function formFor(spec: CommandSpec, n: number): ParamSpec[] | undefined {
  return spec.forms.find((f) => (f.length > 0 && isRest(f[f.length - 1]!) ? n >= f.length : f.length === n));
}

/** Checks the words of a command against its table row; throws USAGE / INVALID_NAME. */
export function parseArgs(spec: CommandSpec, words: readonly string[]): ParsedArgs {
  const split = splitCommandWords(spec, words, true);
  const positional = split.positional;
  const form = formFor(spec, positional.length);
  if (form === undefined) throw new CoterieError('USAGE', `usage: ${usageOf(spec)}`);
  const values: Record<string, string> = {};
  form.forEach((param, i) => {
    const rest = positional.slice(i);
    const value =
      param.kind === 'text' ? rest.join(' ') : param.kind === 'globs' ? rest.join('\n') : positional[i]!;
    checkValue(param, value);
    values[param.name] = value;
  });
  return { values, flags: split.flags, options: split.options, repeated: split.repeated };
}

/** The parameters of the form the words match (for path resolution and stdin passwords). */
export function matchForm(spec: CommandSpec, words: readonly string[]): ParamSpec[] | undefined {
  return formFor(spec, splitCommandWords(spec, words, false).positional.length);
}

/**
 * Rewrites path arguments as absolute paths against `cwd`: the CLI runs in
 * the user's directory, the daemon elsewhere.
 */
export function absolutizePaths(spec: CommandSpec, words: readonly string[], cwd: string): string[] {
  const split = splitCommandWords(spec, words, false);
  const form = formFor(spec, split.positional.length);
  if (form === undefined) return [...words];
  const out = [...words];
  split.at.forEach((wordIndex, k) => {
    const param = form[Math.min(k, form.length - 1)];
    const w = out[wordIndex]!;
    if ((param?.kind === 'source_path' || param?.kind === 'dest_path') && w !== '' && !isAbsolute(w)) {
      out[wordIndex] = resolve(cwd, w);
    }
  });
  return out;
}

/** A whole-number option (`--limit 5`), checked before anything is sent: USAGE otherwise. */
export function numberOption(args: ParsedArgs, name: string, min: number): number | undefined {
  const v = args.options[name];
  return v === undefined ? undefined : wholeNumber(`--${name}`, v, min);
}

export function wholeNumber(what: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!/^[0-9]{1,15}$/.test(value) || Number(value) < min || Number(value) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new CoterieError('USAGE', `${what} wants a whole number ${range}, not '${value.slice(0, 40)}'`);
  }
  return Number(value);
}

const SECONDS_PER_UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** A duration as seconds: `30s`, `5m`, `1h`, `1d`, or a bare number of seconds; USAGE otherwise. */
export function parseDuration(what: string, value: string, maxSeconds: number): number {
  const m = /^([0-9]{1,9})([smhd]?)$/.exec(value);
  const seconds = m === null ? Number.NaN : Number(m[1]) * SECONDS_PER_UNIT[m[2] || 's']!;
  if (!(seconds >= 1 && seconds <= maxSeconds)) {
    throw new CoterieError(
      'USAGE',
      `${what} wants a duration such as 30s, 5m or 1h, from 1s to ${maxSeconds / 3600}h, not '${value.slice(0, 40)}'`,
    );
  }
  return seconds;
}

/** A storage quota as people write it (50GiB, 500MiB): bytes, at least one; USAGE otherwise. */
export function parseQuota(value: string): number {
  let bytes: number;
  try {
    bytes = parseByteSize(value);
  } catch (err) {
    throw new CoterieError('USAGE', (err as Error).message);
  }
  if (bytes < 1) throw new CoterieError('USAGE', `a quota of ${value} holds nothing: give at least 1 byte`);
  return bytes;
}

/** A replica count (set_replication's min and max): 0 to 64. */
export function parseReplicaCount(name: string, value: string): number {
  if (!/^[0-9]{1,2}$/.test(value) || Number(value) > 64) {
    throw new CoterieError(
      'USAGE',
      `<${name}> wants a whole number of replicas from 0 to 64, not '${value.slice(0, 20)}'`,
    );
  }
  return Number(value);
}
