import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RoundTrips } from '../../src/core/round-trips.js';
import { Heartbeat } from '../../src/peer/tracker/heartbeat.js';
import { parseTrackerUrls, TrackerPool } from '../../src/peer/tracker/pool.js';
import { CoterieError } from '../../src/protocol/errors.js';

describe('tracker pool', () => {
  it('parses URL lists', () => {
    expect(parseTrackerUrls('http://a:1, 127.0.0.1:2')).toEqual(['http://a:1', 'http://127.0.0.1:2']);
    expect(() => parseTrackerUrls(' , ')).toThrow(CoterieError);
    expect(() => parseTrackerUrls('ftp://x')).toThrow(CoterieError);
  });

  it('moves to the next tracker at once, then backs off after a whole round', () => {
    const pool = new TrackerPool(['a', 'b', 'c'], { backoffMs: [0, 10, 50, 200], jitter: 0 });
    expect(pool.current).toBe('a');
    expect(pool.failed('a')).toEqual({ next: 'b', delayMs: 0 });
    expect(pool.failed('b')).toEqual({ next: 'c', delayMs: 0 });
    expect(pool.allFailed).toBe(false);
    expect(pool.failed('c')).toEqual({ next: 'a', delayMs: 10 });
    expect(pool.allFailed).toBe(true);
    expect(pool.failed('a').delayMs).toBe(50);
    pool.failed('b');
    pool.failed('c');
    expect(pool.failed('a').delayMs).toBe(200);
    pool.failed('b');
    pool.failed('c');
    expect(pool.failed('a').delayMs).toBe(200); // the last step repeats
    pool.succeeded('b');
    expect(pool.allFailed).toBe(false);
    expect(pool.failed('b')).toEqual({ next: 'c', delayMs: 0 });
  });

  it('ignores a stale failure of a tracker it already left', () => {
    const pool = new TrackerPool(['a', 'b'], { backoffMs: [0, 10], jitter: 0 });
    pool.failed('a');
    expect(pool.current).toBe('b');
    pool.failed('a');
    expect(pool.current).toBe('b');
  });

  it('waits with backoff on a single tracker, jittered within bounds', () => {
    const rnd = [0, 1];
    let i = 0;
    const pool = new TrackerPool(['a'], { backoffMs: [0, 100], jitter: 0.5, random: () => rnd[i++ % 2]! });
    expect(pool.failed().delayMs).toBe(50);
    expect(pool.failed().delayMs).toBe(150);
  });
});

describe('heartbeat', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('pings after silence and declares death without an answer', () => {
    let pings = 0;
    let dead = 0;
    const hb = new Heartbeat({
      intervalMs: 20,
      timeoutMs: 20,
      sendPing: () => pings++,
      onDead: () => dead++,
    });
    hb.start();
    vi.advanceTimersByTime(19);
    expect(pings).toBe(0);
    vi.advanceTimersByTime(1);
    expect(pings).toBe(1);
    vi.advanceTimersByTime(19);
    expect(dead).toBe(0);
    vi.advanceTimersByTime(1);
    // Judged once the I/O already received is handled (a setImmediate), not in the timer itself.
    expect(dead).toBe(0);
    vi.advanceTimersToNextTimer();
    expect(dead).toBe(1);
    hb.stop();
  });

  it('stays alive while the tracker answers, and needs no ping while traffic flows', () => {
    let pings = 0;
    let dead = 0;
    const hb = new Heartbeat({
      intervalMs: 15,
      timeoutMs: 15,
      sendPing: () => {
        pings++;
        setTimeout(() => hb.seen(), 2);
      },
      onDead: () => dead++,
    });
    hb.start();
    vi.advanceTimersByTime(200);
    expect(dead).toBe(0);
    expect(pings).toBeGreaterThan(3);
    hb.seen();
    const before = pings;
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(5);
      hb.seen();
    }
    expect(pings).toBe(before);
    hb.stop();
  });

  it('waits for a pong as long as the round trips say, within the floor and the timeout', () => {
    const rtt = new RoundTrips({ floorMs: 100 });
    // No sample yet: the whole timeout.
    expect(rtt.deadlineMs(2_500)).toBe(2_500);
    rtt.sample(1);
    expect(rtt.deadlineMs(2_500)).toBe(100); // 1 + 4 × 0.5, raised to the floor
    // A tracker whose answers grow slow and uneven widens its own deadline…
    for (const ms of [300, 20, 400, 10, 350]) rtt.sample(ms);
    const wide = rtt.deadlineMs(2_500);
    expect(wide).toBeGreaterThan(400);
    expect(wide).toBeLessThan(2_500);
    // …never past the timeout.
    expect(rtt.deadlineMs(300)).toBe(300);
  });

  it('judges a ping by its round-trip deadline, not the whole timeout', () => {
    let pings = 0;
    let dead = 0;
    const roundTrips = new RoundTrips({ floorMs: 50 });
    roundTrips.sample(2); // the handshake
    const hb = new Heartbeat({
      intervalMs: 1_000,
      timeoutMs: 1_000,
      roundTrips,
      sendPing: () => pings++,
      onDead: () => dead++,
    });
    hb.start();
    vi.advanceTimersByTime(1_000);
    expect(pings).toBe(1);
    expect(hb.deadlineMs()).toBe(50);
    vi.advanceTimersByTime(50);
    vi.advanceTimersToNextTimer(); // the judgement, after the I/O already received
    expect(dead).toBe(1);
    hb.stop();
  });

  it('learns from its pongs: the next ping is due an interval after the answer, with a deadline from it', () => {
    let pings = 0;
    let dead = 0;
    const roundTrips = new RoundTrips({ floorMs: 10 });
    const hb = new Heartbeat({
      intervalMs: 100,
      timeoutMs: 1_000,
      roundTrips,
      sendPing: () => {
        pings++;
        setTimeout(() => hb.pong(), 30);
      },
      onDead: () => dead++,
    });
    hb.start();
    vi.advanceTimersByTime(100);
    expect(pings).toBe(1);
    expect(hb.deadlineMs()).toBe(1_000); // nothing measured yet
    vi.advanceTimersByTime(30);
    expect(roundTrips.smoothedMs).toBe(30);
    expect(hb.deadlineMs()).toBe(90); // 30 + 4 × 15
    // Answered: pinged again 100 ms after the pong, not after the 1 s deadline.
    vi.advanceTimersByTime(99);
    expect(pings).toBe(1);
    vi.advanceTimersByTime(1);
    expect(pings).toBe(2);
    vi.advanceTimersByTime(1_000);
    expect(dead).toBe(0);
    hb.stop();
  });
});
