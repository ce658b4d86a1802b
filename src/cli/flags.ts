import { isIP } from 'node:net';
import { CoterieError } from '../protocol/errors.js';

/** Checks of command-line values shared by `coterie tracker` and `coterie peer`. */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function parseLogLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new CoterieError('USAGE', `--log-level must be one of ${LOG_LEVELS.join(', ')}, not '${value}'`);
  }
  return value as LogLevel;
}

// RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens.
const HOST_NAME =
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * A host other machines are told to reach us at: an IP address or a host name. Checked here
 * because nothing else would: the peers it is announced to would only fail to connect.
 */
export function parseAdvertisedHost(value: string, flag: string): string {
  if (isIP(value) !== 0 || HOST_NAME.test(value)) return value;
  throw new CoterieError('USAGE', `invalid ${flag} '${value}': an IP address or a host name`);
}

/** An integer flag within [min, max]; undefined when not given; USAGE naming the flag otherwise. */
export function integerFlag(
  value: string | undefined,
  what: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new CoterieError('USAGE', `${what} must be an integer between ${min} and ${max}, not '${value}'`);
  }
  return n;
}
