import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { Manifest } from '../../../protocol/manifest.js';
import {
  type LentBlock,
  ManifestPieceSource,
  type PartialPieceSource,
  type PieceSource,
} from '../../../wire/index.js';
import type { PieceStore } from './piece-store.js';
import type { RecentPieces } from './recent-pieces.js';

/**
 * How long reads wait, once the download completed, for the share its file becomes (an HTTP
 * call to the tracker and the file opened: well under a second). Past this, they are refused.
 */
export const HANDOVER_WAIT_MS = 10_000;

/**
 * A download's partial file, seen by the piece server: the pieces verified last from memory
 * (`recent`, see recent-pieces.ts), the others from the store.
 *
 * Once the download completed, its store is closed, yet the other downloaders of the swarm keep
 * their connections to this one and ask it for pieces it told them it has. Those reads go to
 * the share the finished file becomes (handOver), waiting for it meanwhile. Refusing them, as a
 * closed file did, cost the swarm every finished downloader: each refusal is a piece the asker
 * takes as not held here, so at the end the last pieces came from the capped seeder alone and
 * the swarm's last second was spent waiting (seen 2026-12-08: 112 refused reads in a 16 × 256
 * MiB swarm, fifteen downloaders held a second at 255 of 256 MiB).
 */
export class DownloadPieceSource extends ManifestPieceSource implements PartialPieceSource {
  readonly bitfield: Bitfield;
  #file: PieceStore | null = null;
  readonly #recent: RecentPieces | undefined;
  /** Where reads go once the download ended: a share's source, null for nowhere, pending while unknown. */
  #next: Promise<PieceSource | null> | null = null;
  #settle: ((to: PieceSource | null) => void) | null = null;
  #to: PieceSource | null | undefined;

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

  /**
   * The download completed: its store closes, and reads wait up to HANDOVER_WAIT_MS for the
   * source its file is shared from (handOver). Ended otherwise (failed, paused, cancelled), it
   * is handed over to null and reads are refused at once.
   */
  ended(): void {
    if (this.#next !== null) return;
    this.#next = new Promise<PieceSource | null>((resolve) => {
      const timer = setTimeout(() => this.handOver(null), HANDOVER_WAIT_MS);
      timer.unref();
      this.#settle = (to) => {
        clearTimeout(timer);
        resolve(to);
      };
    });
  }

  handOver(to: PieceSource | null): void {
    if (this.#to !== undefined) return;
    this.#to = to;
    this.#next ??= Promise.resolve(to);
    this.#settle?.(to);
  }

  read(piece: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.#next !== null) {
      return this.#next.then((to) => {
        if (to === null) throw new CoterieError('PIECE_UNAVAILABLE', 'download ended');
        return to.read(piece, offset, length, into);
      });
    }
    if (!this.#file) return Promise.reject(new CoterieError('PIECE_UNAVAILABLE', 'download not open yet'));
    const kept = this.bitfield.has(piece) ? this.#recent?.read(piece, offset, length, into) : undefined;
    if (kept != null) return Promise.resolve(kept);
    return this.#file.read(piece, offset, length, into);
  }

  /** A block of a piece verified last, without a copy (recent-pieces.ts); null: read() it. */
  lend(piece: number, offset: number, length: number): LentBlock | null {
    if (this.#next !== null || !this.bitfield.has(piece)) return null;
    return this.#recent?.lend(piece, offset, length) ?? null;
  }

  reportCorrupt(piece: number): void {
    if (this.#to) this.#to.reportCorrupt?.(piece);
  }
}
