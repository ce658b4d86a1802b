/**
 * The pieces a download verified last, kept in memory after their write so that the piece
 * server serves them to other downloaders without reading them back from disk.
 *
 * Why: downloads write past the page cache (O_DIRECT, see partial-file.ts), so every block a
 * downloader served to the swarm was a read from the disk, on the I/O thread pool (a hand-off
 * there and back per block). In a swarm each byte is downloaded once from a peer that got it
 * moments before: a piece is rarest, and so asked for most, just after it was verified. A piece
 * kept here is its verified buffer itself (the slot it was hashed and written from), handed back
 * to its pool when it leaves; a served block is copied out of it, so it never leaves while the
 * socket still reads it.
 *
 * Bounded: at most `maxBytes` of pieces, the oldest leaving first. Only verified pieces come in
 * (after their write), and nothing writes into a kept buffer, so what is served from here is
 * what was verified.
 */
export class RecentPieces {
  /** By piece number, in the order kept (a Map iterates in insertion order): the oldest first. */
  readonly #pieces = new Map<number, Buffer>();
  #bytes = 0;
  #closed = false;
  /** Blocks served from memory, and read from the store because their piece had left. */
  readonly stats = { hits: 0, misses: 0 };

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
      this.release(old);
    }
    return true;
  }

  /**
   * The block `offset`..`offset + length` of `piece` copied into `into` (a fresh buffer without
   * one), or null when the piece is not kept. The range is the caller's to check.
   */
  read(piece: number, offset: number, length: number, into?: Buffer): Buffer | null {
    const buf = this.#pieces.get(piece);
    if (buf === undefined || offset + length > buf.length) {
      this.stats.misses++;
      return null;
    }
    const out = into ?? Buffer.allocUnsafe(length);
    buf.copy(out, 0, offset, offset + length);
    this.stats.hits++;
    return out;
  }

  /** Lets every piece go (the download ended); nothing is kept from now on. */
  close(): void {
    this.#closed = true;
    const kept = [...this.#pieces.values()];
    this.#pieces.clear();
    this.#bytes = 0;
    for (const buf of kept) this.release(buf);
  }
}
