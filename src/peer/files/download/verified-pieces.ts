import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { Manifest } from '../../../protocol/manifest.js';
import { ManifestPieceSource, type PieceSource } from '../../../wire/index.js';
import type { PieceStore } from './piece-store.js';
import type { RecentPieces } from './recent-pieces.js';

/**
 * A download's partial file, seen by the piece server: the pieces verified last from memory
 * (`recent`, see recent-pieces.ts), the others from the store.
 */
export class DownloadPieceSource extends ManifestPieceSource implements PieceSource {
  readonly bitfield: Bitfield;
  #file: PieceStore | null = null;
  readonly #recent: RecentPieces | undefined;
  constructor(manifest: Manifest, count: number, recent?: RecentPieces) {
    super(manifest);
    this.bitfield = new Bitfield(count);
    this.#recent = recent;
  }
  attach(file: PieceStore): void {
    this.#file = file;
    for (let i = 0; i < this.bitfield.length; i++) if (file.hasPiece(i)) this.markHave(i);
  }
  markHave(piece: number): void {
    if (this.bitfield.set(piece)) this.emit('have', piece);
  }
  read(piece: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (!this.#file) return Promise.reject(new CoterieError('PIECE_UNAVAILABLE', 'download not open yet'));
    const kept = this.bitfield.has(piece) ? this.#recent?.read(piece, offset, length, into) : undefined;
    if (kept != null) return Promise.resolve(kept);
    return this.#file.read(piece, offset, length, into);
  }
}
