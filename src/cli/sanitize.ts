/**
 * What reaches a terminal from another user or the network (message bodies,
 * names, relayed error messages, notices) goes through here, so that a
 * message cannot clear the screen, set the title, draw a fake prompt or
 * reorder what is shown (Trojan Source): C0 and C1 controls, DEL, the
 * bidirectional embeddings, overrides and isolates, and the Unicode line and
 * paragraph separators are shown escaped (`\x1b`, `\u202e`). Escaping ESC
 * itself defuses every escape sequence: what follows it is printable.
 *
 * The bidirectional marks U+200E, U+200F and U+061C pass: they are what
 * Arabic and Hebrew keyboards put into ordinary text, and unlike embeddings
 * and overrides they open nothing that reorders the rest of a line (names
 * refuse them anyway, protocol/names.ts). Accents, CJK and emoji are text.
 *
 * `--json` is not escaped here: JSON keeps the true text (safeJson below
 * only writes the same characters as `\u` escapes).
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
// biome-ignore lint/suspicious/noControlCharactersInRegex: the same, but a newline stays a line break
const UNSAFE_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
// Characters JSON.stringify writes raw although a terminal would act on them.
const JSON_RAW = /[\u007f-\u009f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeOne(ch: string): string {
  const named = NAMED[ch];
  if (named !== undefined) return named;
  const code = ch.charCodeAt(0);
  return code < 0x80
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** One line of text as a terminal may show it: every control escaped, a newline too. */
export function shown(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}

/** Text of several lines (an answer already made of shown fields): every control escaped but the newlines. */
export function shownLines(text: string): string {
  return text.replace(UNSAFE_BUT_NEWLINE, escapeOne);
}

/**
 * A message body on the terminal: each of its lines shown, the lines after
 * the first indented by `indent`, so that a body can never start a line that
 * looks like another message, a notice or a prompt.
 */
export function shownBody(body: string, indent: string): string {
  return body
    .split(/\r?\n/)
    .map((line) => shown(line))
    .join(`\n${indent}`);
}

/** Every string in an answer shown (message bodies keep their newlines for shownBody); a copy. */
export function shownDeep<T>(value: T): T {
  const walk = (v: unknown, key: string | undefined): unknown => {
    if (typeof v === 'string') return key === 'body' ? shownLines(v.replace(/\r\n/g, '\n')) : shown(v);
    if (Array.isArray(v)) return v.map((x) => walk(x, undefined));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
    }
    return v;
  };
  return walk(value, undefined) as T;
}

/** JSON for `--json` on a terminal: the true text, with what a terminal would act on written as `\u` escapes. */
export function safeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    JSON_RAW,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
