import type { Command } from 'commander';
import { parseHostPort } from '../protocol/addresses.js';
import { CoterieError } from '../protocol/errors.js';
import { formatRelayEndpoint } from '../protocol/relay.js';
import { parseByteSize } from '../protocol/sizes.js';
import { parseFingerprint } from '../protocol/tracker-url.js';
import { RELAY_DEFAULTS, type RelayLimits } from '../relay/index.js';
import { integerFlag } from './flags.js';

/** The relay's limits as flags, shared by `coterie relay` and `coterie tracker` (its built-in relay). */
export interface RelayLimitFlags {
  relayMaxCircuits?: string;
  relayMaxCircuitsPerUser?: string;
  relayMaxReservations?: string;
  relayRate?: string;
  relayReservationTtlMs?: string;
}

export function addRelayLimitOptions(command: Command): Command {
  return command
    .option(
      '--relay-max-circuits <n>',
      `circuits open at once through the relay (default ${RELAY_DEFAULTS.maxCircuits})`,
    )
    .option(
      '--relay-max-circuits-per-user <n>',
      `circuits one user holds at once (default ${RELAY_DEFAULTS.maxCircuitsPerUser})`,
    )
    .option(
      '--relay-max-reservations <n>',
      `peers holding a reservation at once (default ${RELAY_DEFAULTS.maxReservations})`,
    )
    .option(
      '--relay-rate <size>',
      'bytes per second per circuit and direction, e.g. 8MiB; 0 for no limit (default 8MiB)',
    )
    .option(
      '--relay-reservation-ttl-ms <ms>',
      `a reservation not renewed this long ends (default ${RELAY_DEFAULTS.reservationTtlMs})`,
    );
}

const count = integerFlag;

export function relayLimits(flags: RelayLimitFlags): Partial<RelayLimits> {
  let rate: number | undefined;
  if (flags.relayRate !== undefined) {
    try {
      rate = parseByteSize(flags.relayRate);
    } catch (err) {
      throw new CoterieError('USAGE', `--relay-rate: ${(err as Error).message}`);
    }
  }
  const limits: Partial<RelayLimits> = {
    maxCircuits: count(flags.relayMaxCircuits, '--relay-max-circuits', 1, 1_000_000),
    maxCircuitsPerUser: count(flags.relayMaxCircuitsPerUser, '--relay-max-circuits-per-user', 1, 1_000_000),
    maxReservations: count(flags.relayMaxReservations, '--relay-max-reservations', 1, 10_000_000),
    rateBytesPerSec: rate,
    reservationTtlMs: count(
      flags.relayReservationTtlMs,
      '--relay-reservation-ttl-ms',
      1_000,
      7 * 24 * 3_600_000,
    ),
  };
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

/** host:port#sha256=<fingerprint>, checked (USAGE names the flag): peers pin the relay by it. */
export function relayAddress(value: string, flag: string): string {
  const [where = '', fingerprint] = value.split('#sha256=');
  const at = parseHostPort(where);
  if (at === undefined || fingerprint === undefined) {
    throw new CoterieError(
      'USAGE',
      `${flag} '${value}' is not host:port#sha256=<fingerprint> (coterie relay prints it when it starts)`,
    );
  }
  return formatRelayEndpoint({ ...at, fingerprint: parseFingerprint(fingerprint) });
}
