import { describe, expect, it } from 'vitest';
import { RecentPieces } from '../../src/peer/files/download/recent-pieces.js';

// A served block of a piece verified last is lent, not copied: the socket encrypts it where it
// lies. Its piece's memory goes back to the pool (and is reused for another piece) only once
// every block lent out of it was written, even if the piece left meanwhile.

const PIECE = 8;

function setup(maxPieces: number) {
  const released: Buffer[] = [];
  const recent = new RecentPieces(maxPieces * PIECE, (buf) => released.push(buf));
  const piece = (n: number) => Buffer.alloc(PIECE, n);
  return { recent, released, piece };
}

describe('lending blocks of the pieces kept', () => {
  it('lends the bytes themselves, not a copy', () => {
    const { recent, piece } = setup(2);
    const p = piece(1);
    recent.keep(1, p);
    const lent = recent.lend(1, 2, 4)!;
    expect([...lent.data]).toEqual([1, 1, 1, 1]);
    p[3] = 9; // the same memory
    expect(lent.data[1]).toBe(9);
    expect(recent.lend(2, 0, 4)).toBeNull();
    expect(recent.lend(1, 6, 4)).toBeNull();
    lent.done();
  });

  it('a piece pushed out while lent goes back to the pool only after its last block is done', () => {
    const { recent, released, piece } = setup(1);
    const first = piece(1);
    recent.keep(1, first);
    const a = recent.lend(1, 0, 4)!;
    const b = recent.lend(1, 4, 4)!;
    recent.keep(2, piece(2)); // pushes piece 1 out
    expect(recent.lend(1, 0, 4)).toBeNull();
    expect(released).toEqual([]);
    expect(recent.lentBuffers).toEqual({ lent: 1, leaving: 1 });
    a.done();
    a.done(); // once only: a second call does not count
    expect(released).toEqual([]);
    b.done();
    expect(released).toEqual([first]);
    expect(recent.lentBuffers).toEqual({ lent: 0, leaving: 0 });
  });

  it('a piece not lent goes back at once; close() holds the lent ones until done', () => {
    const { recent, released, piece } = setup(2);
    const one = piece(1);
    const two = piece(2);
    recent.keep(1, one);
    recent.keep(2, two);
    const lent = recent.lend(2, 0, PIECE)!;
    recent.close();
    expect(released).toEqual([one]);
    lent.done();
    expect(released).toEqual([one, two]);
  });

  it('a piece lent and done stays kept, and lends again', () => {
    const { recent, released, piece } = setup(2);
    recent.keep(1, piece(1));
    recent.lend(1, 0, 4)!.done();
    expect(released).toEqual([]);
    expect(recent.lend(1, 0, 4)).not.toBeNull();
  });
});
