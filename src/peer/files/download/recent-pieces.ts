import type { LentBlock } from '../../../wire/index.js';

/**
 * The pieces a download verified last, kept in memory after their write so that the piece
 * server serves them to other downloaders without reading them back from disk.
 *
 * Why: downloads write past the page cache (O_DIRECT, see partial-file.ts), so every block a
 * downloader served to the swarm was a read from the disk, on the I/O thread pool (a hand-off
 * there and back per block). In a swarm each byte is downloaded once from a peer that got it
 * moments before: a piece is rarest, and so asked for most, just after it was verified. A piece
 * kept here is its verified buffer itself (the slot it was hashed and written from), handed back
 * to its pool when it leaves. A served block is lent, not copied (lend): the socket encrypts it
 * where it lies, and its piece goes back to the pool only once every block lent out of it was
 * written. Copying each block out first cost a pass over every byte served, about 3 % of a
 * 16-downloader swarm's CPU (A/B, 2026-12-08).
 *
 * Bounded: at most `maxBytes` of pieces, the oldest leaving first; a piece that leaves while a
 * block of it is being written is held until that write ends, so beyond `maxBytes` at most the
 * blocks in flight on the sockets. Only verified pieces come in (after their write), and nothing
 * writes into a kept buffer, so what is served from here is what was verified.
 */
export class RecentPieces {
  /** By piece number, in the order kept (a Map iterates in insertion order): the oldest first. */
  readonly #pieces = new Map<number, Buffer>();
  #bytes = 0;
  #closed = false;
  /** Kept buffers with blocks lent out and not done: how many each. */
  readonly #lent = new Map<Buffer, number>();
  /** Buffers that left (pushed out, or closed) while lent: given back on their last done(). */
  readonly #leaving = new Set<Buffer>();

  constructor(
    readonly maxBytes: number,
    /** Takes a buffer back once it leaves (its pool's slot). */
    readonly release: (buf: Buffer) => void,
  ) {}

  /** Bytes kept now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Keeps the verified bytes of `piece` (which nothing may change from now on). False when not
   * kept (closed, too big, or kept already): then the caller still owns `buf`.
   */
  keep(piece: number, buf: Buffer): boolean {
    if (this.#closed || buf.length === 0 || buf.length > this.maxBytes || this.#pieces.has(piece))
      return false;
    this.#pieces.set(piece, buf);
    this.#bytes += buf.length;
    for (const [oldest, old] of this.#pieces) {
      if (this.#bytes <= this.maxBytes) break;
      this.#pieces.delete(oldest);
      this.#bytes -= old.length;
      this.#leave(old);
    }
    return true;
  }

  /** The block `offset`..`offset + length` of `piece` itself, held until done(); null when not kept. */
  lend(piece: number, offset: number, length: number): LentBlock | null {
    const buf = this.#pieces.get(piece);
    if (buf === undefined || offset + length > buf.length) return null;
    this.#lent.set(buf, (this.#lent.get(buf) ?? 0) + 1);
    let done = false;
    return {
      data: buf.subarray(offset, offset + length),
      done: () => {
        if (done) return;
        done = true;
        const left = this.#lent.get(buf)! - 1;
        if (left > 0) this.#lent.set(buf, left);
        else {
          this.#lent.delete(buf);
          if (this.#leaving.delete(buf)) this.release(buf);
        }
      },
    };
  }

  /** Buffers lent out now, and those held past their leaving for it (tests look). */
  get lentBuffers(): { lent: number; leaving: number } {
    return { lent: this.#lent.size, leaving: this.#leaving.size };
  }

  #leave(buf: Buffer): void {
    if (this.#lent.has(buf)) this.#leaving.add(buf);
    else this.release(buf);
  }

  /**
   * The block `offset`..`offset + length` of `piece` copied into `into` (a fresh buffer without
   * one), or null when the piece is not kept. The range is the caller's to check.
   */
  read(piece: number, offset: number, length: number, into?: Buffer): Buffer | null {
    const buf = this.#pieces.get(piece);
    if (buf === undefined || offset + length > buf.length) return null;
    const out = into ?? Buffer.allocUnsafe(length);
    buf.copy(out, 0, offset, offset + length);
    return out;
  }

  /** Lets every piece go (the download ended); nothing is kept from now on. */
  close(): void {
    this.#closed = true;
    const kept = [...this.#pieces.values()];
    this.#pieces.clear();
    this.#bytes = 0;
    for (const buf of kept) this.#leave(buf);
  }
}
