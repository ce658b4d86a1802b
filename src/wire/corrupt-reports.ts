import { CoterieError } from '../protocol/errors.js';
import type { CorruptFrame } from './frames.js';
import type { PieceSource } from './piece-source.js';

/**
 * A downloader says a piece we sent it failed its hash. The report is
 * checked against the connection (its file, a piece of it) and handed to the
 * source, which does not trust it blindly: a shared file re-hashes that
 * piece, within its bounds (share-guard.ts). Nothing is sent back.
 */
export function takeCorruptReport(frame: CorruptFrame, fileId: string, source: PieceSource): void {
  if (frame.fileId !== fileId) throw new CoterieError('PROTOCOL_ERROR', 'corrupt report names another file');
  if (frame.piece >= source.pieceCount) {
    throw new CoterieError('PIECE_OUT_OF_RANGE', `corrupt report for piece ${frame.piece} past the last one`);
  }
  source.reportCorrupt?.(frame.piece);
}
