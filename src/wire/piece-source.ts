import { EventEmitter } from 'node:events';
import { type FileHandle, open } from 'node:fs/promises';
import { Bitfield } from '../core/bitfield.js';
import { CoterieError } from '../protocol/errors.js';
import { type Manifest, pieceLength } from '../protocol/manifest.js';
import { readCached } from './cached-read.js';
import type { Clock } from './clock.js';
import { ShareGuard, type ShareGuardOptions, stampOf } from './share-guard.js';

/**
 * What the piece server needs of a file the local peer holds, fully (a
 * share) or partly (a download in progress, whose pieces it offers to the
 * swarm as they are verified).
 */
export interface PieceSource {
  /**
   * The file's pieces: their count and size, and each one's length (0 outside the file). Not
   * the manifest itself: a folder share is served without holding its whole manifest
   * (peer/files/tree-source.ts), so a piece's length may take a look at one of its pages.
   */
  readonly pieceCount: number;
  readonly pieceSize: number;
  pieceLength(piece: number): number;
  /** Pieces present and verified. Live: it may grow; each new piece is announced with 'have'. */
  readonly bitfield: Bitfield;
  /**
   * Reads `length` bytes at `offset` of piece `piece` by position. The range
   * is already checked. With `into` (exactly `length` bytes, e.g. a pooled
   * buffer), reads into it and returns it; a source that cannot may return
   * another buffer instead, which the caller then sends as is.
   */
  read(piece: number, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * The block without a copy, where the source holds it in memory (a download's pieces verified
   * last, peer/files/download/recent-pieces.ts); null: read() it. Its data is read until done(),
   * called once, after which the source may reuse the memory.
   */
  lend?(piece: number, offset: number, length: number): LentBlock | null;
  /** A downloader says `piece` failed its hash (a source that can may check its file). */
  reportCorrupt?(piece: number): void;
  on(event: 'have', listener: (piece: number) => void): unknown;
  off(event: 'have', listener: (piece: number) => void): unknown;
}

/** A block lent by a PieceSource: `data` stays as it is until done(). */
export interface LentBlock {
  readonly data: Buffer;
  done(): void;
}

/**
 * A download's verified pieces served while it runs (peer/files/download/verified-pieces.ts).
 * When the download completes, its file becomes a share with a source of its own, and the
 * connections this source serves go on reading from that one.
 */
export interface PartialPieceSource extends PieceSource {
  /** The source that serves this file from now on, or null when none will (reads are refused). */
  handOver(to: PieceSource | null): void;
}

/** Finds the source for a file id; undefined when this peer does not hold the file. */
export type PieceSourceLookup = (fileId: string) => PieceSource | undefined;

/**
 * A PieceSource's pieces read off a whole manifest in memory (a shared file, a download's partial
 * file): their count, size and each one's length. A folder share's source reads its manifest's
 * pages instead (peer/files/tree-source.ts). One listener per connection serving the file: many
 * is normal, not a leak.
 */
export abstract class ManifestPieceSource extends EventEmitter<{ have: [number] }> {
  constructor(readonly manifest: Manifest) {
    super();
    this.setMaxListeners(0);
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
}

/**
 * A PieceSource over one file on disk: a shared file (every piece present)
 * or a download's `<dest>.part` (pieces marked present as they are verified
 * and written, with markHave).
 */
export class FilePieceSource extends ManifestPieceSource implements PieceSource {
  readonly bitfield: Bitfield;
  /** Set with `checkChanges`: what tells this file changed since it was shared. */
  readonly guard: ShareGuard | undefined;
  readonly #fh: FileHandle;
  #closed = false;
  /**
   * How reads were served: `cached`, read whole from the page cache on the calling thread;
   * `pool`, (partly) read on the thread pool (see cached-read.ts).
   */
  readonly readCounts = { cached: 0, pool: 0 };

  private constructor(
    manifest: Manifest,
    bitfield: Bitfield,
    fh: FileHandle,
    guard: ((source: FilePieceSource) => ShareGuard) | undefined,
  ) {
    super(manifest);
    this.bitfield = bitfield;
    this.#fh = fh;
    this.guard = guard?.(this);
  }

  /**
   * Opens `path` for reading. Without `bitfield`, every piece is taken as
   * present (the file is complete and was hashed into `manifest`). With
   * `checkChanges` (a shared file), the file's size, mtime and inode as
   * opened are what it must keep: reads fail with NOT_SHARING once it
   * changed, and corrupt reports re-hash the piece (see share-guard.ts).
   */
  static async open(
    path: string,
    manifest: Manifest,
    options: {
      bitfield?: Bitfield;
      checkChanges?: boolean | Partial<ShareGuardOptions>;
      /** The share guard's clock (the real one by default). */
      clock?: Clock;
    } = {},
  ) {
    const count = manifest.pieces.length;
    const bitfield = options.bitfield ?? Bitfield.full(count);
    if (bitfield.length !== count) {
      throw new CoterieError(
        'INVALID_MANIFEST',
        `bitfield of ${bitfield.length} pieces for a ${count}-piece file`,
      );
    }
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      throw new CoterieError('PATH_INVALID', `cannot open ${path}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const check = options.checkChanges;
    if (check === undefined || check === false) return new FilePieceSource(manifest, bitfield, fh, undefined);
    const stamp = stampOf(await fh.stat());
    return new FilePieceSource(
      manifest,
      bitfield,
      fh,
      (self) =>
        new ShareGuard(
          path,
          manifest,
          stamp,
          (piece) => self.#readRange(piece, 0, pieceLength(manifest, piece), undefined),
          check === true ? {} : check,
          options.clock,
        ),
    );
  }

  reportCorrupt(piece: number): void {
    if (piece >= 0 && piece < this.manifest.pieces.length) this.guard?.report(piece);
  }

  /** Records that a verified piece is now on disk and announces it to connected peers. */
  markHave(piece: number): void {
    if (this.bitfield.set(piece)) this.emit('have', piece);
  }

  async read(piece: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    // A changed file says so (NOT_SHARING) even once closed: the piece server then ends the connection.
    await this.guard?.assertUnchanged();
    return this.#readRange(piece, offset, length, into);
  }

  async #readRange(piece: number, offset: number, length: number, into: Buffer | undefined): Promise<Buffer> {
    if (this.#closed) throw new CoterieError('PIECE_UNAVAILABLE', 'the file is no longer served');
    if (offset < 0 || length < 0 || offset + length > pieceLength(this.manifest, piece)) {
      throw new CoterieError('PIECE_OUT_OF_RANGE', `block ${piece}:${offset}+${length} outside the piece`);
    }
    // The piece server passes a pooled buffer (see block-pool.ts); other callers get a fresh one.
    const buf = into ?? Buffer.allocUnsafe(length);
    if (buf.length !== length) throw new RangeError(`read into ${buf.length} bytes, want ${length}`);
    const position = piece * this.manifest.pieceSize + offset;
    // What the page cache holds is copied here at once; only the rest waits on the thread pool.
    let got = readCached(this.#fh.fd, buf, position);
    if (got === length) {
      this.readCounts.cached++;
      return buf;
    }
    this.readCounts.pool++;
    while (got < length) {
      const { bytesRead } = await this.#fh.read(buf, got, length - got, position + got);
      if (bytesRead === 0)
        throw new CoterieError('PIECE_UNAVAILABLE', 'the file is shorter than its manifest');
      got += bytesRead;
    }
    return buf;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }
}
