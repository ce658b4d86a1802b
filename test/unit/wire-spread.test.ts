import { describe, expect, it } from 'vitest';
import { SPREAD_IDLE_MS, Spread, SpreadView } from '../../src/wire/spread.js';
import { FakeClock } from '../helpers/fake-clock.js';

// The seeder's spreading (wire/spread.ts): each connection is shown a window of the pieces shown
// to the fewest connections, refilled as it asks, widened when it stops asking.

const KiB = 1024;

function views(n: number, pieces: number, pieceSize = 64 * KiB) {
  const clock = new FakeClock();
  const spread = new Spread(pieces, pieceSize, () => 0);
  const shown = Array.from({ length: n }, () => [] as number[]);
  const vs = shown.map((list) => new SpreadView(spread, (p) => list.push(p), clock));
  return { clock, spread, shown, vs };
}

describe('spreading a complete file over its downloaders', () => {
  it('shows connections that start together disjoint windows that cover the file', () => {
    const { shown, vs } = views(4, 64);
    for (const v of vs) v.start();
    const all = shown.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(64);
    for (const list of shown) expect(list.length).toBe(16);
  });

  it('refills the window as a connection asks, least-shown pieces first', () => {
    const { shown, vs } = views(2, 64);
    for (const v of vs) v.start();
    vs[0]!.asked(shown[0]![0]!);
    // Every piece was shown once: the next one is one of the other connection's.
    expect(shown[0]!.length).toBe(33);
    expect(shown[1]!).toContain(shown[0]![32]);
    vs[1]!.asked(shown[1]![0]!);
    // That one was shown twice now: the other connection gets a piece shown once.
    expect(shown[1]![32]).not.toBe(shown[0]![32]);
    // Asking for a piece outside the window (a retry) shows nothing more.
    vs[0]!.asked(shown[0]![0]!);
    expect(shown[0]!.length).toBe(33);
  });

  it('widens the window of a connection that asks for nothing, until it shows every piece', () => {
    const { clock, shown, vs } = views(2, 256);
    for (const v of vs) v.start();
    const before = shown[0]!.length;
    clock.advance(SPREAD_IDLE_MS);
    const once = shown[0]!.length;
    expect(once).toBeGreaterThan(before);
    for (let i = 0; i < 8; i++) clock.advance(SPREAD_IDLE_MS);
    expect(new Set(shown[0]).size).toBe(256);
    expect(vs[0]!.seen.isComplete()).toBe(true);
  });

  it('shows a downloader only pieces it does not hold, and nobody holds while some are left', () => {
    const { shown, vs, clock } = views(2, 16, 16 * 1024 * KiB);
    for (let i = 0; i < 12; i++) vs[0]!.holds(i);
    vs[0]!.start();
    expect(shown[0]!.sort((a, b) => a - b)).toEqual([12, 13, 14, 15]);
    // The second downloader is shown what nobody holds (shown to the first, not yet fetched).
    vs[1]!.start();
    expect([...shown[1]!].sort((a, b) => a - b)).toEqual([12, 13, 14, 15]);
    // It asks for all four: nothing is left that nobody holds, so nothing more is shown…
    for (const p of [...shown[1]!]) vs[1]!.asked(p);
    expect(shown[1]!.length).toBe(4);
    // …until it holds its window and asks for nothing: then what the first one holds.
    for (const p of [...shown[1]!]) vs[1]!.holds(p);
    clock.advance(SPREAD_IDLE_MS); // the interval it asked in
    expect(shown[1]!.length).toBe(4);
    clock.advance(SPREAD_IDLE_MS); // a whole one without
    expect(shown[1]!.length).toBe(8);
    expect(shown[1]!.slice(4).every((p) => p < 12)).toBe(true);
  });

  it('shows a lone downloader a window of 32 MiB worth of pieces', () => {
    const { shown, vs } = views(1, 2048, 128 * KiB);
    vs[0]!.start();
    expect(shown[0]!.length).toBe(256);
    vs[0]!.stop();
  });
});
