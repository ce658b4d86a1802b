import { describe, expect, it } from 'vitest';
import { DOWNLOAD_DEFAULTS } from '../../src/peer/files/download/options.js';
import { upgradeSchedule } from '../../src/peer/files/download/upgrade-schedule.js';

describe("a relayed link's upgrade schedule", () => {
  it('tries a second or two after the relay, then doubles the wait up to the interval', () => {
    const s = upgradeSchedule({ ...DOWNLOAD_DEFAULTS.upgrade, jitter: 0 });
    expect([1, 2, 3, 4, 5, 10].map((n) => s.delayMs(n))).toEqual([
      1_500, 3_000, 6_000, 10_000, 10_000, 10_000,
    ]);
  });

  it('takes up to `jitter` off each wait, never more, never adding to the interval', () => {
    const policy = DOWNLOAD_DEFAULTS.upgrade;
    const most = upgradeSchedule(policy, () => 1);
    const none = upgradeSchedule(policy, () => 0);
    expect(most.delayMs(1)).toBe(Math.round(policy.firstMs * (1 - policy.jitter)));
    expect(none.delayMs(1)).toBe(policy.firstMs);
    expect(most.delayMs(9)).toBe(Math.round(policy.intervalMs * (1 - policy.jitter)));
    expect(none.delayMs(9)).toBe(policy.intervalMs);
  });

  it('keeps a first wait longer than the interval as the only wait', () => {
    const s = upgradeSchedule({ ...DOWNLOAD_DEFAULTS.upgrade, firstMs: 500, intervalMs: 200, jitter: 0 });
    expect([1, 2, 3].map((n) => s.delayMs(n))).toEqual([500, 500, 500]);
  });
});
