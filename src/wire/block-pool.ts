/**
 * Reusable buffers for the blocks a piece server reads from disk and writes
 * to sockets. A fresh 256 KiB buffer per block costs the seeder a page fault
 * per page on its first touch (the disk read) and leaves the garbage
 * collector a GiB of dead external memory per GiB served; with the pool, a
 * steady upload allocates nothing.
 *
 * A buffer is lent as a BlockLease and comes back with lease.release(),
 * which the server calls only once the socket is done with the bytes (the
 * write's callback, which Node calls on success, on error and when the
 * stream is destroyed), never while the kernel or the TLS layer may still
 * read them. release() is idempotent per lease: a second call (a callback
 * fired twice, a cleanup path) cannot hand one buffer to two users.
 *
 * Bounded: the pool owns at most maxBytes (lent plus free). Past that it
 * first drops free buffers of other sizes, then lends plain unpooled buffers
 * (the old behaviour) rather than wait: a full pool never stalls a transfer.
 */

export interface BlockPoolOptions {
  /** The most bytes the pool owns, lent and free together. */
  maxBytes: number;
}

export interface BlockPoolStats {
  /** Bytes of buffers the pool owns (lent + free). */
  ownedBytes: number;
  /** Bytes waiting in the free lists. */
  freeBytes: number;
  /** Leases not yet released (pooled or not). */
  leased: number;
  /** Pooled buffers ever created. */
  allocated: number;
  /** Leases served from a free buffer. */
  reused: number;
  /** Leases served by an unpooled buffer because the pool was full. */
  unpooled: number;
}

/** One lent block buffer. */
export interface BlockLease {
  /** Exactly the length asked for. */
  readonly buffer: Buffer;
  /** Gives the buffer back. Only once nothing can read or write it any more; later calls do nothing. */
  release(): void;
}

export class BlockPool {
  readonly maxBytes: number;
  /** Free buffers by length; Map order is the order lengths first appeared (oldest dropped first). */
  readonly #free = new Map<number, Buffer[]>();
  #ownedBytes = 0;
  #freeBytes = 0;
  #leased = 0;
  #allocated = 0;
  #reused = 0;
  #unpooled = 0;

  constructor(options: BlockPoolOptions) {
    if (!(options.maxBytes >= 0)) throw new RangeError('BlockPool: maxBytes must be ≥ 0');
    this.maxBytes = options.maxBytes;
  }

  /** Lends a buffer of `length` bytes (contents undefined). */
  lease(length: number): BlockLease {
    if (!Number.isInteger(length) || length <= 0) throw new RangeError(`BlockPool: bad length ${length}`);
    this.#leased++;
    const free = this.#free.get(length);
    const reused = free?.pop();
    if (reused !== undefined) {
      this.#freeBytes -= length;
      this.#reused++;
      return this.#lend(reused, true);
    }
    if (this.#makeRoom(length)) {
      this.#ownedBytes += length;
      this.#allocated++;
      // Its own memory (not a slice of Node's shared slab), so nothing else ever aliases it.
      return this.#lend(Buffer.allocUnsafeSlow(length), true);
    }
    this.#unpooled++;
    return this.#lend(Buffer.allocUnsafe(length), false);
  }

  stats(): BlockPoolStats {
    return {
      ownedBytes: this.#ownedBytes,
      freeBytes: this.#freeBytes,
      leased: this.#leased,
      allocated: this.#allocated,
      reused: this.#reused,
      unpooled: this.#unpooled,
    };
  }

  /** Drops every free buffer (lent ones come back later as usual). */
  trim(): void {
    this.#ownedBytes -= this.#freeBytes;
    this.#freeBytes = 0;
    this.#free.clear();
  }

  #lend(buffer: Buffer, pooled: boolean): BlockLease {
    let released = false;
    return {
      buffer,
      release: () => {
        if (released) return;
        released = true;
        this.#leased--;
        if (pooled) this.#giveBack(buffer);
      },
    };
  }

  #giveBack(buffer: Buffer): void {
    let free = this.#free.get(buffer.length);
    if (free === undefined) {
      free = [];
      this.#free.set(buffer.length, free);
    }
    free.push(buffer);
    this.#freeBytes += buffer.length;
  }

  /** True when a new buffer of `length` fits under maxBytes, after dropping free buffers of other sizes. */
  #makeRoom(length: number): boolean {
    if (this.#ownedBytes + length <= this.maxBytes) return true;
    for (const [size, free] of this.#free) {
      while (free.length > 0 && this.#ownedBytes + length > this.maxBytes) {
        free.pop();
        this.#freeBytes -= size;
        this.#ownedBytes -= size;
      }
      if (free.length === 0) this.#free.delete(size);
      if (this.#ownedBytes + length <= this.maxBytes) return true;
    }
    return false;
  }
}
