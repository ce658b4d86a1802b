import { describe, expect, it } from 'vitest';
import { sharedTicket } from '../../src/peer/files/download/tree.js';
import type { Clock } from '../../src/wire/index.js';

// A folder download's files share one ticket while it is fresh: one tracker call per 30 s, not
// one per file (a 2,000-file folder made 2,000 calls).

describe('the tickets of a folder download', () => {
  it('asks the tracker once for many files, again once the ticket is 30 s old, and after a failure', async () => {
    let now = 1_000;
    const clock = { now: () => now } as unknown as Clock;
    let calls = 0;
    let fail = false;
    const get = sharedTicket(async () => {
      calls++;
      if (fail) throw new Error('tracker down');
      return `t${calls}`;
    }, clock);
    const first = await Promise.all(Array.from({ length: 50 }, () => get()));
    expect(new Set(first)).toEqual(new Set(['t1']));
    now += 29_000;
    expect(await get()).toBe('t1');
    now += 2_000;
    expect(await get()).toBe('t2');
    expect(calls).toBe(2);
    now += 31_000;
    fail = true;
    await expect(get()).rejects.toThrow('tracker down');
    fail = false;
    expect(await get()).toBe('t4');
    expect(calls).toBe(4);
  });
});
