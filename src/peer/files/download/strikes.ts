import type { StruckPiece } from '../../../core/scheduler.js';
import { CoterieError } from '../../../protocol/errors.js';

/** Most piece indices named in a message; the error's details list them all. */
const NAMED_PIECES = 10;

function list(pieces: number[]): string {
  const shown = pieces.slice(0, NAMED_PIECES).join(', ');
  return pieces.length > NAMED_PIECES ? `${shown} and ${pieces.length - NAMED_PIECES} more` : shown;
}

/**
 * The error of a download that fetched everything it could and is left with
 * pieces only struck seeders hold: which pieces, which seeder served each
 * corrupt, and that the verified rest waits in the part file.
 */
export function struckOutError(
  struck: StruckPiece[],
  o: { dest: string; missingPieces: number; verifiedPieces: number },
): CoterieError {
  const bySeeder = new Map<string, number[]>();
  for (const { piece, peers } of struck) {
    for (const p of peers) bySeeder.set(p, [...(bySeeder.get(p) ?? []), piece]);
  }
  const who = [...bySeeder].map(([peer, pieces]) => `${list(pieces)} from ${peer.slice(0, 12)}`).join('; ');
  const others = o.missingPieces - struck.length;
  const unheld = others > 0 ? `, and no connected seeder has ${others} other missing pieces` : '';
  return new CoterieError(
    'CORRUPT_PIECE',
    `piece${struck.length === 1 ? '' : 's'} ${list(struck.map((s) => s.piece))} failed verification at every seeder that has them (${who})${unheld}; the ${o.verifiedPieces} verified pieces are kept in ${o.dest}.part: run the download again when another seeder has the file`,
    {
      details: {
        corruptPieces: struck.map((s) => s.piece),
        seeders: Object.fromEntries(bySeeder),
        missingPieces: o.missingPieces,
      },
    },
  );
}
