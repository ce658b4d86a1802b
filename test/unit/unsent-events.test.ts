// The backlog of events a tracker could not NOTIFY (tracker/events/unsent-events.ts): merged
// per stream, in order, bounded, and an overflow said to the others as events_lost.
import { describe, expect, it } from 'vitest';
import type { TrackerEvent } from '../../src/tracker/events/index.js';
import { STORED_RANGES_PER_EVENT, UnsentEvents } from '../../src/tracker/events/unsent-events.js';

const stored = (streams: [string, number, number][], at = 1, origin = 't1'): TrackerEvent => ({
  kind: 'messages_stored',
  origin,
  streams: streams.map(([s, from, to]) => ({ s, from, to })),
  at,
});
const left = (peerId: string): TrackerEvent => ({ kind: 'seeder_left', fileId: 'f', peerId, at: 1 });

describe('UnsentEvents', () => {
  it('merges the ranges of a stream, keeps other events in order, and empties when taken', () => {
    const u = new UnsentEvents();
    expect(u.empty).toBe(true);
    u.add([stored([['s1', 1, 2]], 5), left('p1')]);
    u.add([
      stored(
        [
          ['s1', 3, 7],
          ['s2', 4, 4],
        ],
        9,
      ),
      left('p2'),
      stored([['s1', 8, 8]], 6),
    ]);
    expect(u.size).toBe(4);
    expect(u.take()).toEqual([
      left('p1'),
      left('p2'),
      stored(
        [
          ['s1', 1, 8],
          ['s2', 4, 4],
        ],
        9,
      ),
    ]);
    expect(u.empty).toBe(true);
    expect(u.take()).toEqual([]);
  });

  it('hands back ranges in events of a bounded number of streams', () => {
    const u = new UnsentEvents();
    const n = STORED_RANGES_PER_EVENT * 2 + 3;
    u.add([stored(Array.from({ length: n }, (_, i): [string, number, number] => [`s${i}`, 1, 1]))]);
    const out = u.take() as Extract<TrackerEvent, { kind: 'messages_stored' }>[];
    expect(out.map((e) => e.streams.length)).toEqual([STORED_RANGES_PER_EVENT, STORED_RANGES_PER_EVENT, 3]);
    expect(out.flatMap((e) => e.streams.map((r) => r.s))).toEqual(
      Array.from({ length: n }, (_, i) => `s${i}`),
    );
  });

  it('past its bounds drops what overflowed and starts what it hands back with events_lost', () => {
    const u = new UnsentEvents({ events: 2, streams: 2 });
    u.add([
      left('p1'),
      left('p2'),
      stored([
        ['s1', 1, 1],
        ['s2', 1, 1],
      ]),
    ]);
    expect(u.take().map((e) => e.kind)).toEqual(['seeder_left', 'seeder_left', 'messages_stored']);

    u.add([left('p1'), left('p2'), left('p3'), stored([['s1', 1, 1]])]);
    expect(u.take()).toEqual([{ kind: 'events_lost', at: expect.any(Number) }, stored([['s1', 1, 1]])]);

    u.add([
      left('p1'),
      stored([
        ['s1', 1, 1],
        ['s2', 1, 1],
        ['s3', 1, 1],
      ]),
    ]);
    expect(u.take()).toEqual([{ kind: 'events_lost', at: expect.any(Number) }, left('p1')]);
    expect(u.empty).toBe(true);
  });

  it('keeps an events_lost it is handed (a failed round that carried one)', () => {
    const u = new UnsentEvents();
    u.add([{ kind: 'events_lost', at: 1 }, left('p1')]);
    expect(u.take().map((e) => e.kind)).toEqual(['events_lost', 'seeder_left']);
  });
});
