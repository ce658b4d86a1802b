import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseByteSize } from '../../src/protocol/sizes.js';

describe('parseByteSize', () => {
  it('reads binary and decimal units', () => {
    expect(parseByteSize('50GiB')).toBe(50 * 1024 ** 3);
    expect(parseByteSize('500MiB')).toBe(500 * 1024 ** 2);
    expect(parseByteSize('500 mib')).toBe(500 * 1024 ** 2);
    expect(parseByteSize('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('2TB')).toBe(2e12);
    expect(parseByteSize('4096')).toBe(4096);
    expect(parseByteSize('7 B')).toBe(7);
  });

  it('refuses what is not a size with BAD_REQUEST', () => {
    for (const bad of ['', 'GiB', '-1GiB', '5 parsecs', '1e3', '0x10', '99999999999TiB']) {
      expect(() => parseByteSize(bad), bad).toThrow(expect.objectContaining({ code: 'BAD_REQUEST' }));
    }
  });

  it('gives back any whole number of bytes written plainly or in KiB', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (n) => {
        expect(parseByteSize(String(n))).toBe(n);
        expect(parseByteSize(`${n}KiB`)).toBe(n * 1024);
      }),
    );
  });
});
