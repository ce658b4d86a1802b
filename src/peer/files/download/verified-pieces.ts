import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { Manifest } from '../../../protocol/manifest.js';
import { ManifestPieceSource, type PieceSource } from '../../../wire/index.js';
import type { PieceStore } from './piece-store.js';

/** A download's partial file, seen by the piece server. */
export class DownloadPieceSource extends ManifestPieceSource implements PieceSource {
  readonly bitfield: Bitfield;
  #file: PieceStore | null = null;
  constructor(manifest: Manifest, count: number) {
    super(manifest);
    this.bitfield = new Bitfield(count);
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
    return this.#file.read(piece, offset, length, into);
  }
}
