import { CoterieError, isCoterieError } from '../../../protocol/errors.js';
import { type Manifest, pieceLength } from '../../../protocol/manifest.js';
import { PIECE_FRAME_HEAD_BYTES } from '../../../wire/index.js';
import { createPieceHasher, type PieceHasher } from './hasher.js';
import { AlignedSlotPool, IO_ALIGNMENT } from './io-memory.js';
import type { PieceStore } from './piece-store.js';

export interface PiecePipelineOptions {
  manifest: Manifest;
  /** The destination, for the messages of failed writes. */
  dest: string;
  blockSizeBytes: number;
  /** Threads hashing pieces besides the main one. */
  hashWorkers: number;
  /** Bytes of pieces waiting for their hash or the disk past which `full` says to ask for no more. */
  maxPendingBytes: number;
  /**
   * A piece is on disk. True when the caller keeps `buf` (to serve it from memory): it then
   * gives it back with recycle() itself, once nothing reads it.
   */
  onWritten: (piece: number, buf: Buffer) => boolean;
  /** A write failed: the download ends with this error. */
  onWriteFailed: (err: CoterieError) => void;
  /** A write finished and freed its memory: the engine may ask for more. */
  onDrained: () => void;
}

/**
 * What happens to blocks between the wire and the disk: they arrive in
 * pooled slots, are assembled into whole pieces, hashed (on a worker thread
 * when there is one), and verified pieces are written by position. It
 * decides nothing: the engine says which blocks count and what a hash means.
 *
 * Block frames each sit in a slot whose data starts page-aligned (see
 * allocateFrame), and pieces assembled from several blocks in slots of their
 * own: reused, so a full-speed download makes no garbage (dead external
 * memory shows as RSS), aligned so that verified pieces go to the disk with
 * O_DIRECT, and shared so that the hashing worker reads them without a copy.
 */
export class PiecePipeline {
  readonly hasher: PieceHasher;
  readonly #o: PiecePipelineOptions;
  readonly #blockSlots: AlignedSlotPool;
  readonly #pieceSlots: AlignedSlotPool;
  /** Pieces being assembled, by `piece:peerId` (one attempt each). */
  readonly #assembling = new Map<string, Buffer>();
  readonly #writes = new Set<Promise<void>>();
  #writingBytes = 0;
  /** Bytes of whole pieces waiting for their hash. */
  #hashingBytes = 0;

  constructor(o: PiecePipelineOptions) {
    this.#o = o;
    this.hasher = createPieceHasher({ workers: o.hashWorkers });
    this.#blockSlots = new AlignedSlotPool(IO_ALIGNMENT + o.blockSizeBytes);
    this.#pieceSlots = new AlignedSlotPool(o.manifest.pieceSize);
  }

  /** Pieces waiting for their hash or for the disk hold memory: ask for no more until they drain. */
  get full(): boolean {
    return this.#writingBytes + this.#hashingBytes > this.#o.maxPendingBytes;
  }

  /** Writes not finished yet. */
  get writing(): number {
    return this.#writes.size;
  }

  /**
   * The decoder's buffers for frames that span socket chunks (every block
   * over TLS, whose records are 16 KiB). A piece frame's payload is placed so
   * that its data starts on a page boundary of its slot: a block that is a
   * whole piece is hashed and written from there, never copied again.
   */
  readonly allocateFrame = (length: number): Buffer => {
    // Only block-sized frames are worth a slot; a bitfield or hello is allocated once.
    const dataBytes = length - PIECE_FRAME_HEAD_BYTES;
    if (length <= 8 * 1024 || dataBytes > this.#blockSlots.slotBytes - IO_ALIGNMENT) {
      return Buffer.allocUnsafe(length);
    }
    const start = IO_ALIGNMENT - PIECE_FRAME_HEAD_BYTES;
    return this.#blockSlots.take().subarray(start, start + length);
  };

  /**
   * Done with a piece or a block: its slot goes back to its pool (never while
   * the hasher or the disk may still read it). Every slot is kept: a pool
   * never holds more than was live at once, which the scheduler's bytes in
   * flight and maxPendingBytes bound.
   */
  recycle(buf: Buffer): void {
    if (!this.#pieceSlots.give(buf)) this.#blockSlots.give(buf);
  }

  /**
   * A block the scheduler accepted from `peerId`: the whole piece once its
   * attempt is complete (a block that is the whole piece as is), else null.
   */
  assemble(
    peerId: string,
    piece: number,
    offset: number,
    data: Buffer,
    attemptComplete: boolean,
  ): Buffer | null {
    const length = pieceLength(this.#o.manifest, piece);
    if (attemptComplete && offset === 0 && data.length === length) return data;
    const key = `${piece}:${peerId}`;
    let buf = this.#assembling.get(key);
    if (!buf) {
      buf = this.#pieceSlots.take().subarray(0, length);
      this.#assembling.set(key, buf);
    }
    data.copy(buf, offset);
    this.recycle(data);
    if (!attemptComplete) return null;
    this.#assembling.delete(key);
    return buf;
  }

  /** The scheduler dropped an attempt (its peer is gone, or another finished first). */
  dropAttempt(piece: number, peerId: string): void {
    const key = `${piece}:${peerId}`;
    const buf = this.#assembling.get(key);
    if (!buf) return;
    this.#assembling.delete(key);
    this.recycle(buf);
  }

  /** The piece's SHA-256, hex; its bytes count against `full` meanwhile. */
  async hash(buf: Buffer): Promise<string> {
    this.#hashingBytes += buf.length;
    try {
      return await this.hasher.hash(buf);
    } finally {
      this.#hashingBytes -= buf.length;
    }
  }

  /** Writes a verified piece; its slot is recycled once the disk is done with it. */
  write(file: PieceStore, piece: number, buf: Buffer): void {
    this.#writingBytes += buf.length;
    let kept = false;
    const p: Promise<void> = file
      .writePiece(piece, buf)
      .then(
        () => {
          kept = this.#o.onWritten(piece, buf);
        },
        (err: unknown) =>
          this.#o.onWriteFailed(
            // A full disk says so (and what it needs); anything else is a failed write.
            isCoterieError(err) && err.code === 'DISK_FULL'
              ? err
              : new CoterieError('DOWNLOAD_FAILED', `writing ${this.#o.dest}.part failed`, { cause: err }),
          ),
      )
      .finally(() => {
        this.#writes.delete(p);
        this.#writingBytes -= buf.length;
        if (!kept) this.recycle(buf);
        this.#o.onDrained();
      });
    this.#writes.add(p);
  }

  /** Resolves when every write under way has finished, however it did. */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#writes]);
  }

  close(): void {
    void this.hasher.close();
    this.#assembling.clear();
  }
}
