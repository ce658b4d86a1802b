import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/core/token-bucket.js';
import {
  parseDays,
  parseHours,
  scheduleRanges,
  slotAt,
  slotRates,
  slotsOf,
} from '../../src/core/week-schedule.js';
import { formatRate, parseRate } from '../../src/protocol/rates.js';

const MiB = 1024 * 1024;

describe('TokenBucket', () => {
  it('is free while unlimited, and lends then makes the sender wait out its debt', () => {
    const b = new TokenBucket();
    b.take(10 * MiB, 0);
    expect(b.waitMs(0)).toBe(0);
    b.setRate(MiB, 0);
    b.take(MiB / 2, 0);
    // Half a MiB of debt at 1 MiB/s: 500 ms.
    expect(b.waitMs(0)).toBe(500);
    expect(b.waitMs(250)).toBe(250);
    expect(b.waitMs(500)).toBe(0);
  });

  it('holds a steady sender to the rate within one burst over any window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 64 * 1024, max: 256 * MiB }),
        fc.array(fc.integer({ min: 1, max: 1024 * 1024 }), { minLength: 50, maxLength: 300 }),
        (rate, chunks) => {
          const b = new TokenBucket(rate, 0);
          let now = 0;
          let sent = 0;
          for (const c of chunks) {
            now += b.waitMs(now);
            b.take(c, now);
            sent += c;
          }
          now += b.waitMs(now);
          // Everything sent was paid for by `now`, up to the burst credit (200 ms, at least 64 KiB).
          const burst = Math.max(64 * 1024, rate * 0.2);
          expect(sent).toBeLessThanOrEqual((now * rate) / 1000 + burst + 1);
          expect(sent).toBeGreaterThanOrEqual((now * rate) / 1000 - 1 - Math.max(...chunks));
        },
      ),
    );
  });

  it('clamps a debt run up at an old rate, so a lowered limit is in force within 1 s', () => {
    const b = new TokenBucket(100 * MiB, 0);
    b.take(100 * MiB, 0);
    b.setRate(MiB, 0);
    // At most one burst (200 ms, at least 64 KiB) of debt carried over.
    expect(b.waitMs(0)).toBeLessThanOrEqual(200);
  });

  it('lets nothing through at rate 0 (a paused slot) until the rate changes', () => {
    const b = new TokenBucket(0, 0);
    expect(b.waitMs(0)).toBe(Number.POSITIVE_INFINITY);
    expect(b.waitMs(60_000)).toBe(Number.POSITIVE_INFINITY);
    b.setRate(Number.POSITIVE_INFINITY, 60_000);
    expect(b.waitMs(60_000)).toBe(0);
  });

  it('refuses a negative rate', () => {
    expect(() => new TokenBucket(-1)).toThrow(RangeError);
  });
});

describe('rates as people write them', () => {
  it('parses KiB/s, MiB/s, GiB/s and 0', () => {
    expect(parseRate('20MiB/s')).toBe(20 * MiB);
    expect(parseRate('512 KiB/s')).toBe(512 * 1024);
    expect(parseRate('1.5GiB/s')).toBe(1.5 * 1024 * MiB);
    expect(parseRate('0')).toBe(0);
    expect(formatRate(20 * MiB)).toBe('20MiB/s');
    expect(formatRate(0)).toBe('unlimited');
  });

  it('refuses -5, fast and a size without /s with USAGE saying what to write', () => {
    for (const bad of ['-5', 'fast', '20MiB', '', '5', '2TiB/s']) {
      let code: string | undefined;
      try {
        parseRate(bad);
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      expect(code, bad).toBe('USAGE');
    }
    expect(() => parseRate('fast')).toThrow(/KiB\/s, MiB\/s or GiB\/s/);
  });
});

describe('the weekly schedule', () => {
  it('names 15-minute slots from Monday 00:00 local time', () => {
    // 2026-12-07 is a Monday.
    expect(slotAt(new Date(2026, 11, 7, 0, 0).getTime())).toBe(0);
    expect(slotAt(new Date(2026, 11, 7, 18, 14).getTime())).toBe(72);
    expect(slotAt(new Date(2026, 11, 13, 23, 59).getTime())).toBe(671);
  });

  it('parses days, hours and ranges, and shows them back', () => {
    expect(parseDays('mon-fri')).toEqual([0, 1, 2, 3, 4]);
    expect(parseDays('fri-mon')).toEqual([0, 4, 5, 6]);
    expect(parseDays('sat,sun')).toEqual([5, 6]);
    expect(parseHours('18:00-24:00')).toEqual({ from: 72, to: 96 });
    const slots = slotsOf([0, 1], parseHours('18:00-24:00'));
    const modes = new Map(slots.map((s) => [s, 'limited' as const]));
    expect(scheduleRanges(modes)).toEqual([
      { from: 'mon 18:00', to: 'mon 24:00', mode: 'limited' },
      { from: 'tue 18:00', to: 'tue 24:00', mode: 'limited' },
    ]);
  });

  it('refuses what is not a slot boundary or a day', () => {
    for (const bad of ['18:10-19:00', '19:00-18:00', '25:00-26:00', '6-7'])
      expect(() => parseHours(bad)).toThrow();
    for (const bad of ['monday', 'mon-', 'x']) expect(() => parseDays(bad)).toThrow();
  });

  it('maps each mode to what it lets through', () => {
    const limited = { uploadBytesPerSec: MiB, downloadBytesPerSec: 0 };
    expect(slotRates('limited', limited)).toEqual({
      upBytesPerSec: MiB,
      downBytesPerSec: Number.POSITIVE_INFINITY,
    });
    expect(slotRates('upload-only', limited).downBytesPerSec).toBe(0);
    expect(slotRates('paused', limited)).toEqual({ upBytesPerSec: 0, downBytesPerSec: 0 });
  });
});
