import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { CoterieError } from '../../src/protocol/errors.js';
import { MAX_PIECES } from '../../src/protocol/manifest.js';

describe('Bitfield', () => {
  it('sets, clears, counts and lists missing pieces', () => {
    const b = new Bitfield(10);
    expect(b.count()).toBe(0);
    expect(b.isEmpty()).toBe(true);
    expect(b.set(0)).toBe(true);
    expect(b.set(0)).toBe(false);
    b.set(9);
    expect(b.has(0) && b.has(9) && !b.has(5)).toBe(true);
    expect(b.has(10)).toBe(false);
    expect(b.has(-1)).toBe(false);
    expect(b.count()).toBe(2);
    expect([...b.present()]).toEqual([0, 9]);
    expect([...b.missing()]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(b.toBuffer().toString('hex')).toBe('8040');
    expect(b.clear(0)).toBe(true);
    expect(b.clear(0)).toBe(false);
    expect(b.count()).toBe(1);
    expect(() => b.set(10)).toThrow(CoterieError);
    expect(() => b.set(1.5)).toThrow(CoterieError);
  });

  it('is complete when every bit is set; a 0-length field is complete', () => {
    expect(new Bitfield(0).isComplete()).toBe(true);
    expect(new Bitfield(0).toBuffer().length).toBe(0);
    const f = Bitfield.full(13);
    expect(f.isComplete()).toBe(true);
    expect(f.toBuffer().toString('hex')).toBe('fff8');
  });

  it('parses its wire form strictly', () => {
    const b = Bitfield.fromBuffer(Buffer.from('8040', 'hex'), 10);
    expect([...b.present()]).toEqual([0, 9]);
    expect(() => Bitfield.fromBuffer(Buffer.from('80', 'hex'), 10)).toThrow(/expected 2/);
    expect(() => Bitfield.fromBuffer(Buffer.from('804000', 'hex'), 10)).toThrow(CoterieError);
    // bit 10 is past the last piece: spare bits must be zero
    expect(() => Bitfield.fromBuffer(Buffer.from('8020', 'hex'), 10)).toThrow(/spare bits/);
    expect(() => new Bitfield(-1)).toThrow(CoterieError);
    expect(() => new Bitfield(MAX_PIECES + 1)).toThrow(CoterieError);
  });

  it('round-trips any set of pieces', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 300 })
          .chain((n) =>
            fc.tuple(fc.constant(n), fc.uniqueArray(fc.nat({ max: Math.max(0, n - 1) }), { maxLength: n })),
          ),
        ([n, set]) => {
          const b = new Bitfield(n);
          for (const i of set) if (i < n) b.set(i);
          const back = Bitfield.fromBuffer(b.toBuffer(), n);
          expect(back.equals(b)).toBe(true);
          expect(back.count()).toBe(b.count());
          expect([...back.present()].length + [...back.missing()].length).toBe(n);
          expect(back.clone().equals(back)).toBe(true);
        },
      ),
    );
  });
});
