import { describe, expect, it } from 'vitest';
import { Heartbeat } from '../../src/peer/tracker/heartbeat.js';
import { parseTrackerUrls, TrackerPool } from '../../src/peer/tracker/pool.js';
import { CoterieError } from '../../src/protocol/errors.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  it('pings after silence and declares death without an answer', async () => {
    let pings = 0;
    let dead = 0;
    const hb = new Heartbeat({
      intervalMs: 20,
      timeoutMs: 20,
      sendPing: () => pings++,
      onDead: () => dead++,
    });
    hb.start();
    await sleep(80);
    hb.stop();
    expect(pings).toBe(1);
    expect(dead).toBe(1);
  });

  it('stays alive while the tracker answers', async () => {
    let dead = 0;
    const hb = new Heartbeat({
      intervalMs: 15,
      timeoutMs: 15,
      sendPing: () => setTimeout(() => hb.seen(), 2),
      onDead: () => dead++,
    });
    hb.start();
    await sleep(120);
    hb.stop();
    expect(dead).toBe(0);
  });
});
