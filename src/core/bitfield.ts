import { CoterieError } from '../protocol/errors.js';
import { MAX_PIECES } from '../protocol/manifest.js';

/**
 * A fixed-length set of piece indexes: which pieces a peer holds.
 *
 * Bit order is the BitTorrent one: piece `i` is bit `0x80 >> (i % 8)` of byte
 * `i >> 3`, so the wire form (`toBuffer`) reads left to right. Spare bits of
 * the last byte are always zero; `fromBuffer` refuses buffers where they are
 * not, since a peer that sets them is either broken or probing.
 */
export class Bitfield {
  /** Number of pieces (bits) the field covers. */
  readonly length: number;
  readonly #bytes: Uint8Array;
  #count = 0;

  constructor(length: number) {
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_PIECES) {
      throw new CoterieError('PROTOCOL_ERROR', `bitfield length ${length} outside 0..${MAX_PIECES}`);
    }
    this.length = length;
    this.#bytes = new Uint8Array(Bitfield.byteLength(length));
  }

  /** Bytes needed to hold `length` bits. */
  static byteLength(length: number): number {
    return Math.ceil(length / 8);
  }

  /** A field with every bit set (a seeder's). */
  static full(length: number): Bitfield {
    const b = new Bitfield(length);
    for (let i = 0; i < length; i++) b.set(i);
    return b;
  }

  /**
   * Parses the wire form. The buffer must be exactly `byteLength(length)`
   * bytes with zero spare bits; anything else is a PROTOCOL_ERROR.
   */
  static fromBuffer(buf: Uint8Array, length: number): Bitfield {
    const b = new Bitfield(length);
    if (buf.length !== b.#bytes.length) {
      throw new CoterieError(
        'PROTOCOL_ERROR',
        `bitfield of ${buf.length} bytes for ${length} pieces (expected ${b.#bytes.length})`,
      );
    }
    const spare = b.#bytes.length * 8 - length;
    if (spare > 0 && (buf[buf.length - 1]! & ((1 << spare) - 1)) !== 0) {
      throw new CoterieError('PROTOCOL_ERROR', 'bitfield has spare bits set past the last piece');
    }
    b.#bytes.set(buf);
    let count = 0;
    for (const byte of b.#bytes) count += POPCOUNT[byte]!;
    b.#count = count;
    return b;
  }

  #check(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new CoterieError('PIECE_OUT_OF_RANGE', `piece ${index} outside 0..${this.length - 1}`);
    }
  }

  has(index: number): boolean {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) return false;
    return (this.#bytes[index >> 3]! & (0x80 >> (index & 7))) !== 0;
  }

  /** Sets bit `index`; returns true if it was not set before. */
  set(index: number): boolean {
    this.#check(index);
    const mask = 0x80 >> (index & 7);
    const byte = this.#bytes[index >> 3]!;
    if ((byte & mask) !== 0) return false;
    this.#bytes[index >> 3] = byte | mask;
    this.#count++;
    return true;
  }

  /** Clears bit `index`; returns true if it was set before. */
  clear(index: number): boolean {
    this.#check(index);
    const mask = 0x80 >> (index & 7);
    const byte = this.#bytes[index >> 3]!;
    if ((byte & mask) === 0) return false;
    this.#bytes[index >> 3] = byte & ~mask;
    this.#count--;
    return true;
  }

  /** Number of bits set. */
  count(): number {
    return this.#count;
  }

  isComplete(): boolean {
    return this.#count === this.length;
  }

  isEmpty(): boolean {
    return this.#count === 0;
  }

  /** Indexes not set, ascending. */
  *missing(): IterableIterator<number> {
    for (let i = 0; i < this.length; i++) if (!this.has(i)) yield i;
  }

  /** Indexes set, ascending. */
  *present(): IterableIterator<number> {
    for (let i = 0; i < this.length; i++) if (this.has(i)) yield i;
  }

  /** The wire form: a copy, safe to send while the field keeps changing. */
  toBuffer(): Buffer {
    return Buffer.from(this.#bytes);
  }

  clone(): Bitfield {
    return Bitfield.fromBuffer(this.#bytes, this.length);
  }

  equals(other: Bitfield): boolean {
    return this.length === other.length && Buffer.from(this.#bytes).equals(Buffer.from(other.#bytes));
  }
}

const POPCOUNT = (() => {
  const t = new Uint8Array(256);
  for (let i = 0; i < 256; i++) t[i] = (i & 1) + t[i >> 1]!;
  return t;
})();
