import { describe, expect, it } from 'vitest';
import { PONG_FLOOR_MS } from '../../src/core/round-trips.js';
import { PATH_KEEPALIVE_DEFAULTS, PathKeepalive } from '../../src/wire/index.js';
import { FakeClock } from '../helpers/fake-clock.js';

// Issue 19: the keepalive of a relayed or punched path, on a fake clock. Each case records when
// pings leave and when (and why) the path is declared dead.
function keepalive(o: { answer?: (nonce: number) => boolean; notReading?: () => boolean } = {}) {
  const clock = new FakeClock();
  const pings: Array<{ at: number; nonce: number }> = [];
  const deaths: Array<{ at: number; reason: string }> = [];
  let k!: PathKeepalive;
  k = new PathKeepalive({
    clock,
    ping: (nonce) => {
      pings.push({ at: clock.now(), nonce });
      // The seeder answers within the same moment (an idle path a round trip of ~0 away).
      if (o.answer?.(nonce) === true) queueMicrotask(() => k.pong(nonce));
      return true;
    },
    notReading: o.notReading ?? (() => false),
    dead: (reason) => deaths.push({ at: clock.now(), reason }),
  });
  k.start();
  const settle = () => new Promise((r) => setImmediate(r));
  return { clock, k, pings, deaths, settle };
}

describe('path keepalive', () => {
  const { intervalMs, timeoutMs, misses } = PATH_KEEPALIVE_DEFAULTS;

  it('pings an answering path once per interval, and never declares it dead', async () => {
    const { clock, pings, deaths, settle } = keepalive({ answer: () => true });
    for (let i = 0; i < 10; i++) {
      clock.advance(intervalMs);
      await settle();
    }
    expect(pings.map((p) => p.at)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => n * intervalMs));
    expect(new Set(pings.map((p) => p.nonce)).size).toBe(10);
    expect(deaths).toEqual([]);
  });

  it('declares a path that never answered dead after its misses, each waited for the whole timeout', () => {
    const { clock, pings, deaths } = keepalive();
    clock.advance(intervalMs + misses * timeoutMs - 1);
    expect(deaths).toEqual([]);
    clock.advance(1);
    // No round trip measured yet: each ping gets the whole timeout, the next leaves at once.
    expect(pings.map((p) => p.at)).toEqual([intervalMs, intervalMs + timeoutMs]);
    expect(deaths).toEqual([
      {
        at: intervalMs + misses * timeoutMs,
        reason: expect.stringMatching(/path silent: 2 keepalive pings/),
      },
    ]);
    clock.advance(10 * intervalMs);
    expect(pings).toHaveLength(misses);
  });

  it('waits no less than the 400 ms pong floor once fast round trips were measured', async () => {
    let answering = true;
    const { clock, pings, deaths, settle } = keepalive({ answer: () => answering });
    for (let i = 0; i < 5; i++) {
      clock.advance(intervalMs);
      await settle();
    }
    // Round trips of ~0 ms measured; the path goes silent.
    answering = false;
    const silentFrom = clock.now();
    clock.advance(intervalMs);
    expect(pings.at(-1)!.at).toBe(silentFrom + intervalMs);
    clock.advance(misses * PONG_FLOOR_MS - 1);
    expect(deaths).toEqual([]);
    clock.advance(1);
    expect(deaths.map((d) => d.at)).toEqual([silentFrom + intervalMs + misses * PONG_FLOOR_MS]);
  });

  it('takes blocks heard after a ping, or our own pause in reading, for a living path', () => {
    let paused = false;
    const t = keepalive({ notReading: () => paused });
    // The pong waits behind blocks on a slow relay: the blocks prove the path.
    t.clock.advance(intervalMs);
    t.k.heard();
    t.clock.advance(timeoutMs);
    expect(t.k.missed).toBe(0);
    // We stopped reading (our consumer is behind): the silence is ours.
    paused = true;
    t.clock.advance(intervalMs + 5 * timeoutMs);
    expect(t.k.missed).toBe(0);
    expect(t.deaths).toEqual([]);
    // One miss, then a frame: the count starts over.
    const u = keepalive();
    u.clock.advance(intervalMs + timeoutMs);
    expect(u.k.missed).toBe(1);
    u.k.heard();
    u.clock.advance(timeoutMs);
    expect(u.k.missed).toBe(0);
    expect(u.deaths).toEqual([]);
  });

  it('ignores a late pong of a ping already counted as missed, and stops for good', () => {
    const t = keepalive();
    t.clock.advance(intervalMs + timeoutMs);
    expect(t.k.missed).toBe(1);
    t.k.pong(t.pings[0]!.nonce);
    expect(t.k.missed).toBe(1);
    t.k.stop();
    t.clock.advance(100 * intervalMs);
    expect(t.pings).toHaveLength(2);
    expect(t.deaths).toEqual([]);
  });
});
