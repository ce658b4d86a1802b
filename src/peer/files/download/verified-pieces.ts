import { EventEmitter } from 'node:events';
import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import { type Manifest, pieceLength } from '../../../protocol/manifest.js';
import type { PieceSource } from '../../../wire/index.js';
import type { PieceStore } from './piece-store.js';

/** A download's partial file, seen by the piece server. */
export class DownloadPieceSource extends EventEmitter<{ have: [number] }> implements PieceSource {
  readonly bitfield: Bitfield;
  #file: PieceStore | null = null;
  constructor(
    readonly manifest: Manifest,
    count: number,
  ) {
    super();
    this.setMaxListeners(0); // one listener per connected downloader
    this.bitfield = new Bitfield(count);
  }
  get pieceCount(): number {
    return this.manifest.pieces.length;
  }
  get pieceSize(): number {
    return this.manifest.pieceSize;
  }
  pieceLength(piece: number): number {
    return pieceLength(this.manifest, piece);
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
