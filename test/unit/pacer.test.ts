import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Pacer } from '../../src/core/pacer.js';

describe('Pacer', () => {
  it('lets a burst through at once, then holds a steady rate', () => {
    const p = new Pacer(1000, 100);
    expect(p.delayFor(100, 0)).toBe(0);
    expect(p.delayFor(100, 0)).toBe(100);
    expect(p.delayFor(500, 0)).toBe(600);
  });

  it('never lets more than rate × time + one burst through', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 0, max: 50 })), {
          minLength: 1,
        }),
        (sends) => {
          const p = new Pacer(10_000, 1_000);
          let now = 0;
          let sent = 0;
          for (const [bytes, gap] of sends) {
            now += gap;
            const at = now + p.delayFor(bytes, now);
            sent += bytes;
            // Everything sent up to `at` fits the rate since 0 plus the burst (and this chunk).
            expect(sent).toBeLessThanOrEqual((at * 10_000) / 1000 + 1_000 + bytes);
          }
        },
      ),
    );
  });
});
