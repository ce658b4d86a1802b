import { CoterieError } from '../../../protocol/errors.js';
import type { SeederLink } from './seeder-links.js';

// The errors of a download that gives up for want of seeders: what happened to each, and that the
// verified pieces wait in the part file for a later run. (Struck-out pieces: strikes.ts.)

/** Every seeder refused for the same reason (a ticket or identity problem): that is the error. */
export function everySeederRefused(links: SeederLink[]): CoterieError | undefined {
  const errors = links.map((l) => l.lastError).filter((e) => e !== null);
  const codes = new Set(errors.map((e) => e.code));
  const only = codes.size === 1 ? errors[0]! : undefined;
  if (only && (only.code.startsWith('TICKET_') || only.code === 'PEER_MISMATCH')) {
    return new CoterieError(only.code, `every seeder refused: ${only.message}`);
  }
  return undefined;
}

/** No seeder left to try: each one's last error, by the start of its peer id. */
export function noSeederLeftError(links: SeederLink[], missingPieces: number): CoterieError {
  const summary = links
    .map((l) => `${l.info.peerId.slice(0, 12)}: ${l.lastError?.message ?? 'gone'}`)
    .join('; ');
  return new CoterieError(
    'NO_SEEDERS',
    `no seeder left with the ${missingPieces} missing pieces (${summary}); run the download again later to resume`,
    { details: { missingPieces } },
  );
}

/** Connected seeders lack some pieces and nothing was verified for `timeoutMs`. */
export function unreachableError(missingPieces: number, timeoutMs: number): CoterieError {
  return new CoterieError(
    'NO_SEEDERS',
    `no connected peer holds ${missingPieces} missing pieces and none was verified for ${Math.round(timeoutMs / 1000)} s; run the download again later to resume`,
    { details: { missingPieces } },
  );
}
