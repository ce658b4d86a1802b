import { describe, expect, it } from 'vitest';
import {
  createBackoff,
  createStepBackoff,
  LISTEN_RECONNECT_STEPS_MS,
  TRACKER_RECONNECT_STEPS_MS,
} from '../../src/core/backoff.js';

describe('exponential backoff', () => {
  it('grows exponentially up to the cap, jitter only shortens', () => {
    const b = createBackoff({ baseMs: 100, maxMs: 1000, factor: 2, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map((n) => b.delayMs(n))).toEqual([100, 200, 400, 800, 1000, 1000]);
    const j = createBackoff({ baseMs: 100, maxMs: 1000, factor: 2, jitter: 0.5, random: () => 1 });
    expect(j.delayMs(2)).toBe(100);
    expect(() => createBackoff({ baseMs: 10, maxMs: 5 })).toThrow(RangeError);
  });
});

describe('step-table backoff', () => {
  it('waits each step of the table in turn, then repeats the last', () => {
    const b = createStepBackoff({ stepsMs: [0, 250, 500, 1000], jitter: 0 });
    expect([0, 1, 2, 3, 4, 9].map((n) => b.delayMs(n))).toEqual([0, 250, 500, 1000, 1000, 1000]);
    // Out-of-range and fractional counts land on the table.
    expect(b.delayMs(-3)).toBe(0);
    expect(b.delayMs(1.7)).toBe(250);
  });

  it('the shared tables start at once and grow', () => {
    for (const table of [TRACKER_RECONNECT_STEPS_MS, LISTEN_RECONNECT_STEPS_MS]) {
      const b = createStepBackoff({ stepsMs: table, jitter: 0 });
      expect(b.delayMs(0)).toBe(0);
      const waits = table.map((_, n) => b.delayMs(n));
      expect(waits).toEqual([...waits].sort((x, y) => x - y));
      expect(Object.isFrozen(table)).toBe(true);
    }
    expect(createStepBackoff({ stepsMs: TRACKER_RECONNECT_STEPS_MS, jitter: 0 }).delayMs(1)).toBe(250);
    expect(createStepBackoff({ stepsMs: LISTEN_RECONNECT_STEPS_MS, jitter: 0 }).delayMs(1)).toBe(100);
  });

  it('spreads each wait by ± jitter around its step, never below 0', () => {
    const rnd = [0, 1, 0.5];
    let i = 0;
    const b = createStepBackoff({ stepsMs: [0, 100], jitter: 0.5, random: () => rnd[i++ % 3]! });
    expect([b.delayMs(1), b.delayMs(1), b.delayMs(1)]).toEqual([50, 150, 100]);
    const full = createStepBackoff({ stepsMs: [0, 10], jitter: 1, random: () => 0 });
    expect(full.delayMs(1)).toBe(0);
  });

  it('refuses an empty table, negative steps and jitter outside [0, 1]', () => {
    expect(() => createStepBackoff({ stepsMs: [], jitter: 0 })).toThrow(RangeError);
    expect(() => createStepBackoff({ stepsMs: [0, -1], jitter: 0 })).toThrow(RangeError);
    expect(() => createStepBackoff({ stepsMs: [0, 1], jitter: 1.5 })).toThrow(RangeError);
  });
});
