import { CoterieError } from './errors.js';

/** User ids and group ids: chosen by people, safe in paths, URLs and logs. */
export const NAME_PATTERN = '^[a-z0-9_.-]{1,64}$';
const NAME_RE = new RegExp(NAME_PATTERN);

export function isValidName(value: unknown): value is string {
  return typeof value === 'string' && NAME_RE.test(value);
}

export function assertName(kind: 'user id' | 'group id' | 'topic', value: unknown): string {
  if (!isValidName(value)) {
    throw new CoterieError(
      'INVALID_NAME',
      `invalid ${kind} ${JSON.stringify(value)}: use 1 to 64 characters among a-z, 0-9, '_', '.' and '-'`,
    );
  }
  return value;
}

/**
 * A user, group or topic name someone is creating now: besides the alphabet,
 * not `.`, `..` or any name of dots only (a path segment that URLs and file
 * systems resolve to something else: `/v1/groups/../join`), and not starting
 * with `-` (read as an option by `coterie` and by every tool a name is handed
 * to in a script). User ids too: they sit in the same URLs and command lines.
 * Names stored before these rules keep working: only creation checks them.
 */
export function isNewName(value: unknown): value is string {
  return isValidName(value) && !/^\.+$/.test(value) && !value.startsWith('-');
}

export function assertNewName(kind: 'user id' | 'group id' | 'topic', value: unknown): string {
  assertName(kind, value);
  if (!isNewName(value)) {
    throw new CoterieError(
      'INVALID_NAME',
      `invalid ${kind} ${JSON.stringify(value)}: a name may not start with '-' or be only dots; pick another`,
    );
  }
  return value;
}

/** Display names of files within a group: a base name, printable, no path separators. */
export const FILE_NAME_MAX_LENGTH = 255;
// biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
const FILE_NAME_FORBIDDEN = /[\u0000-\u001f\u007f/\\]/;

export function isValidFileName(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length >= 1 &&
    value.length <= FILE_NAME_MAX_LENGTH &&
    value !== '.' &&
    value !== '..' &&
    !FILE_NAME_FORBIDDEN.test(value)
  );
}

/**
 * Characters a new file name may not hold beyond those: C1 controls, and the
 * bidirectional controls (embeddings, overrides, isolates and the marks), with
 * which `gpj.exe` displays as `exe.jpg` (Trojan Source). Existing names with
 * them still resolve (isValidFileName); the terminal shows them escaped.
 */
const FILE_NAME_NEW_FORBIDDEN = /[\u0080-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** A file name someone shares under now (the tracker lists it, a peer sends it). */
export function isNewFileName(value: unknown): value is string {
  return isValidFileName(value) && !FILE_NAME_NEW_FORBIDDEN.test(value);
}

/** Peer ids and file ids: lowercase hex SHA-256. */
export const HEX64_PATTERN = '^[0-9a-f]{64}$';
const HEX64_RE = new RegExp(HEX64_PATTERN);

export function isHex64(value: unknown): value is string {
  return typeof value === 'string' && HEX64_RE.test(value);
}

/** Message ids: 32 hex characters, derived from (sender, client id). */
export const MESSAGE_ID_PATTERN = '^[0-9a-f]{32}$';
