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

/** Peer ids and file ids: lowercase hex SHA-256. */
export const HEX64_PATTERN = '^[0-9a-f]{64}$';
const HEX64_RE = new RegExp(HEX64_PATTERN);

export function isHex64(value: unknown): value is string {
  return typeof value === 'string' && HEX64_RE.test(value);
}

/** Message ids: 32 hex characters, derived from (sender, client id). */
export const MESSAGE_ID_PATTERN = '^[0-9a-f]{32}$';
