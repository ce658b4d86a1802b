import type { Scheduler, StruckPiece } from '../../../core/scheduler.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { SeederLink } from './seeder-link.js';
import { struckOutError } from './strikes.js';

// When a download gives up for want of seeders, and its error: what happened to each seeder, and
// that the verified pieces wait in the part file for a later run. (Struck-out pieces: strikes.ts.)

/** What the give-up checks read of a running download. */
export interface GiveUpFacts {
  links: { values(): SeederLink[]; anyPending(): boolean };
  scheduler: Pick<Scheduler, 'struckOut' | 'verifiedCount' | 'unreachableCount'>;
  pieceCount: number;
  dest: string;
  /** Verified pieces still being written. */
  writing: number;
  sinceVerifiedMs: number;
  noProgressTimeoutMs: number;
}

/**
 * The error to end the download with, if it should end now:
 * - `struck`: everything fetchable is in and only pieces that struck seeders hold are left, with
 *   no dial pending that could bring another holder (the pieces are named);
 * - `unreachable`: connected seeders all lack some piece (partial seeders, a downloader that
 *   stopped) and none was verified for noProgressTimeoutMs, with no connection pending;
 * - `starved`: no seeder is left to try.
 */
export function giveUpError(
  why: 'struck' | 'unreachable' | 'starved',
  f: GiveUpFacts,
): CoterieError | undefined {
  const struck = f.scheduler.struckOut();
  if (why === 'struck') {
    if (struck === undefined || f.writing > 0 || f.links.anyPending()) return undefined;
    return struckOut(struck, f);
  }
  if (why === 'unreachable') {
    if (f.sinceVerifiedMs < f.noProgressTimeoutMs || f.links.anyPending()) return undefined;
    const unreachable = f.scheduler.unreachableCount();
    return unreachable === 0 ? undefined : unreachableError(unreachable, f.noProgressTimeoutMs);
  }
  const links = f.links.values();
  if (links.some((l) => !l.givenUp)) return undefined;
  const refused = everySeederRefused(links);
  if (refused) return refused;
  if (struck !== undefined) return struckOut(struck, f);
  return noSeederLeftError(links, f.pieceCount - f.scheduler.verifiedCount());
}

function struckOut(struck: StruckPiece[], f: GiveUpFacts): CoterieError {
  const verifiedPieces = f.scheduler.verifiedCount();
  const missingPieces = f.pieceCount - verifiedPieces;
  return struckOutError(struck, { dest: f.dest, missingPieces, verifiedPieces });
}

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
