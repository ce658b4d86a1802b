import { describe, expect, it } from 'vitest';
import { TrackerHttpClient } from '../../src/peer/tracker/http-client.js';
import { TrackerPool } from '../../src/peer/tracker/pool.js';
import { CoterieError } from '../../src/protocol/errors.js';

const FAST = { backoffMs: [0, 10, 20], jitter: 0 };
const member = (url: string, sessions: number, requestsPerSecond = 0) => ({
  url,
  sessions,
  requestsPerSecond,
});

describe('tracker pool learning the cluster', () => {
  it('orders the live trackers least loaded first, then the seeds it did not list', () => {
    const pool = new TrackerPool(['http://seed:1'], FAST);
    const changes: (readonly string[])[] = [];
    pool.on('changed', (urls) => changes.push(urls));
    // Draws b then a: the less loaded of the two, a.
    const draws = [0, 0.1];
    const chooser = new TrackerPool(['http://seed:1'], { ...FAST, random: () => draws.shift() ?? 0 });
    chooser.learn([member('http://b:2', 5), member('http://a:1', 1), member('http://c:3', 1, 9)], {
      choose: true,
    });
    expect(chooser.current).toBe('http://a:1');
    pool.learn([member('http://b:2', 5), member('http://a:1', 1), member('http://c:3', 1, 9)]);
    expect(pool.urls).toEqual(['http://a:1', 'http://c:3', 'http://b:2', 'http://seed:1']);
    expect(changes).toHaveLength(1);
    pool.learn([member('http://b:2', 5), member('http://a:1', 1), member('http://c:3', 1, 9)]);
    expect(changes).toHaveLength(1); // same list: no change
  });

  it('keeps the current tracker current when the list is reordered, and fails over to the next', () => {
    const pool = new TrackerPool(['http://a:1', 'http://b:2', 'http://c:3'], FAST);
    const failed: string[] = [];
    pool.on('failed', (u) => failed.push(u));
    pool.failed('http://a:1');
    expect(pool.current).toBe('http://b:2');
    pool.succeeded('http://b:2');
    // b now reports itself the busiest: it stays current (no rebalancing of a working session).
    pool.learn([member('http://a:1', 0), member('http://c:3', 1), member('http://b:2', 9)]);
    expect(pool.current).toBe('http://b:2');
    expect(pool.failed('http://b:2')).toEqual({ next: 'http://a:1', delayMs: 0 });
    expect(failed).toEqual(['http://a:1', 'http://b:2']);
  });

  it('moves to the head when its current tracker left the list', () => {
    const pool = new TrackerPool(['http://a:1'], FAST);
    pool.learn([member('http://b:2', 3), member('http://c:3', 2)]);
    // a (a seed) stays in the list, last; it was current and stays so until it fails.
    expect(pool.urls).toEqual(['http://c:3', 'http://b:2', 'http://a:1']);
    expect(pool.current).toBe('http://a:1');
    pool.failed('http://a:1');
    expect(pool.current).toBe('http://c:3');
  });

  it('spreads peers that read the same loads: the power of two choices, not the least loaded for all', () => {
    // 3,000 peers starting together see the same (lagging) figures: a=10, b=10, c=11.
    const counts = new Map<string, number>();
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 3000; i++) {
      const pool = new TrackerPool(['http://seed:1'], { ...FAST, random });
      pool.learn([member('http://a:1', 10), member('http://b:2', 10), member('http://c:3', 11)], {
        choose: true,
      });
      counts.set(pool.current, (counts.get(pool.current) ?? 0) + 1);
    }
    // c loses every draw it is in (2 of 3 pairs): a and b each get half of the rest, plus their
    // own pair split by the draw order; c is never chosen. None takes them all.
    expect(counts.get('http://c:3')).toBeUndefined();
    expect(counts.get('http://a:1')).toBeGreaterThan(1300);
    expect(counts.get('http://b:2')).toBeGreaterThan(1300);
  });

  it('moves to a listed tracker when asked, and refuses one the cluster does not list', () => {
    const pool = new TrackerPool(['http://a:1'], FAST);
    pool.learn([member('http://a:1', 3), member('http://b:2', 0)]);
    expect(pool.current).toBe('http://a:1');
    expect(pool.moveTo('http://evil:9')).toBe(false);
    expect(pool.moveTo('not a url')).toBe(false);
    expect(pool.current).toBe('http://a:1');
    expect(pool.moveTo('http://b:2/')).toBe(true);
    expect(pool.current).toBe('http://b:2');
    expect(pool.moveTo('http://b:2')).toBe(false); // already there
  });

  it('ignores URLs that are not http(s)', () => {
    const pool = new TrackerPool(['http://a:1'], FAST);
    pool.learn([member('ftp://x:1', 0), member('not a url', 0)]);
    expect(pool.urls).toEqual(['http://a:1']);
  });
});

/** A fake fetch: each tracker answers per a script; records the calls. */
function fakeFetch(script: Record<string, (n: number) => Response | Error>) {
  const calls: { url: string; key: string | undefined }[] = [];
  const counts = new Map<string, number>();
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const base = new URL(url).origin;
    const n = (counts.get(base) ?? 0) + 1;
    counts.set(base, n);
    calls.push({ url, key: (init?.headers as Record<string, string> | undefined)?.['idempotency-key'] });
    const r = script[base]?.(n) ?? new Error('ECONNREFUSED');
    if (r instanceof Error) throw r;
    return r;
  };
  return { fetch: f as typeof fetch, calls };
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('tracker HTTP client failover', () => {
  it('retries a write on the next tracker with the same idempotency key', async () => {
    const pool = new TrackerPool(['http://a:1', 'http://b:2'], FAST);
    pool.succeeded('http://a:1');
    const { fetch, calls } = fakeFetch({
      'http://a:1': () => new Error('ECONNRESET'),
      'http://b:2': () =>
        json(201, { groupId: 'g', owner: 'u', memberCount: 1, standing: 'member', createdAt: 1 }),
    });
    const http = new TrackerHttpClient({ pool, getToken: () => 't', fetch, sleep: async () => {} });
    await expect(http.call('createGroup', { body: { groupId: 'g' } })).resolves.toMatchObject({
      groupId: 'g',
    });
    expect(calls.map((c) => new URL(c.url).origin)).toEqual(['http://a:1', 'http://b:2']);
    expect(calls[0]!.key).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls[1]!.key).toBe(calls[0]!.key);
    expect(pool.current).toBe('http://b:2');
  });

  it('sends no idempotency key on reads; treats a 503 without our body as a dead tracker', async () => {
    const pool = new TrackerPool(['http://a:1', 'http://b:2'], FAST);
    const { fetch, calls } = fakeFetch({
      'http://a:1': () => new Response('Service Unavailable', { status: 503 }),
      'http://b:2': () => json(200, { groups: [] }),
    });
    const http = new TrackerHttpClient({ pool, getToken: () => 't', fetch, sleep: async () => {} });
    await expect(http.call('listGroups')).resolves.toEqual({ groups: [] });
    expect(calls.map((c) => c.key)).toEqual([undefined, undefined]);
  });

  it('keeps trying through a failover window once a tracker answered, then gives up', async () => {
    const pool = new TrackerPool(['http://a:1', 'http://b:2'], FAST);
    pool.succeeded('http://a:1');
    let clock = 0;
    const sleeps: number[] = [];
    const { fetch } = fakeFetch({
      'http://b:2': (n) => (n >= 3 ? json(200, { groups: [] }) : new Error('ECONNREFUSED')),
    });
    const http = new TrackerHttpClient({
      pool,
      getToken: () => 't',
      fetch,
      retryForMs: 1_000,
      now: () => clock,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock += ms;
      },
    });
    // a, b at once; then the pool's backoff between rounds (the last step repeats).
    await expect(http.call('listGroups')).resolves.toEqual({ groups: [] });
    expect(sleeps).toEqual([10, 20, 20, 20]);
    expect(clock).toBe(70);

    // Nobody answers for longer than retryForMs: TRACKER_UNAVAILABLE, after about that long.
    const dead = new TrackerHttpClient({
      pool,
      getToken: () => 't',
      fetch: fakeFetch({}).fetch,
      retryForMs: 1_000,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    const before = clock;
    await expect(dead.call('listGroups')).rejects.toMatchObject({ code: 'TRACKER_UNAVAILABLE' });
    expect(clock - before).toBe(1_000);
  });

  it('fails fast with TRACKER_UNAVAILABLE when no tracker ever answered', async () => {
    const pool = new TrackerPool(['http://a:1', 'http://b:2'], FAST);
    const { fetch, calls } = fakeFetch({});
    const http = new TrackerHttpClient({ pool, getToken: () => 't', fetch, sleep: async () => {} });
    const err = await http.call('listGroups').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoterieError);
    expect((err as CoterieError).code).toBe('TRACKER_UNAVAILABLE');
    expect(calls).toHaveLength(2);
  });

  it('gives API errors back as they are, without trying another tracker', async () => {
    const pool = new TrackerPool(['http://a:1', 'http://b:2'], FAST);
    const { fetch, calls } = fakeFetch({
      'http://a:1': () => json(409, { error: { code: 'GROUP_EXISTS', message: 'taken' } }),
    });
    const http = new TrackerHttpClient({ pool, getToken: () => 't', fetch, sleep: async () => {} });
    await expect(http.call('createGroup', { body: { groupId: 'g' } })).rejects.toMatchObject({
      code: 'GROUP_EXISTS',
    });
    expect(calls).toHaveLength(1);
  });
});
