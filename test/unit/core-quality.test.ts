import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyReport,
  currentQuality,
  decayed,
  isFlagged,
  NEUTRAL_SCORE,
  observation,
} from '../../src/core/quality.js';
import { storedScore } from '../../src/tracker/services/quality.js';

const policy = { scoreHalfLifeMs: 1000, corruptFlagThreshold: 3 };
const clean = { bytes: 10_000_000, seconds: 1, failedPieces: 0, corruptPieces: 0 };
const corrupt = { bytes: 1000, seconds: 1, failedPieces: 0, corruptPieces: 1 };

describe('peer quality scores', () => {
  it('stays in [0, 1] whatever is reported', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            bytes: fc.nat(),
            seconds: fc.double({ min: 0, max: 1e9, noNaN: true }),
            failedPieces: fc.nat(1e9),
            corruptPieces: fc.nat(1e9),
          }),
          { maxLength: 20 },
        ),
        (reports) => {
          let s: ReturnType<typeof applyReport> | undefined;
          let t = 0;
          for (const r of reports) {
            t += 100;
            s = applyReport(s, r, t, policy);
          }
          if (s) {
            expect(s.score).toBeGreaterThanOrEqual(0);
            expect(s.score).toBeLessThanOrEqual(1);
          }
          expect(observation(reports[0] ?? clean)).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });

  it('rises with clean reports, falls with corrupt ones, flags repeat offenders', () => {
    const good = applyReport(applyReport(undefined, clean, 0, policy), clean, 0, policy);
    expect(good.score).toBeGreaterThan(NEUTRAL_SCORE);
    let bad = applyReport(undefined, corrupt, 0, policy);
    expect(bad.score).toBeLessThan(NEUTRAL_SCORE);
    expect(isFlagged(bad, policy)).toBe(false);
    bad = applyReport(applyReport(bad, corrupt, 0, policy), corrupt, 0, policy);
    expect(isFlagged(bad, policy)).toBe(true);
  });

  it('decays back toward neutral with the half-life', () => {
    const s = { score: 0.9, corrupt: 4, updatedAt: 0 };
    const half = decayed(s, 1000, 1000);
    expect(half.score).toBeCloseTo(0.7);
    expect(half.corrupt).toBeCloseTo(2);
    expect(currentQuality(storedScore({ score: 0.9, corrupt: 4, updated_at: 0 }), 1000, policy)).toEqual({
      score: 0.7,
      flagged: false,
    });
    expect(currentQuality(undefined, 0, policy)).toEqual({ score: NEUTRAL_SCORE, flagged: false });
    // A seeder with no score row (the left join found none) lists as neutral.
    expect(storedScore({ score: null, corrupt: null, updated_at: null })).toBeUndefined();
    expect(currentQuality(storedScore(undefined), 0, policy)).toEqual({
      score: NEUTRAL_SCORE,
      flagged: false,
    });
  });
});
