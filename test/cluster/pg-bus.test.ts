// The cluster's event bus (tracker/events/pg-bus.ts) between two buses on a real PostgreSQL,
// as two trackers hold them: an announcement whose NOTIFY cannot go (its connection's backend
// terminated, no new connection to be had) is kept and sent once PostgreSQL takes it again, with
// what was published meanwhile, rather than dropped; an announcement over many streams is split
// across payloads rather than dropped as too large.
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, expect, it } from 'vitest';
import { directStreamId } from '../../src/protocol/streams.js';
import type { EventBus, TrackerEvent } from '../../src/tracker/events/index.js';
import { createPgEventBus } from '../../src/tracker/events/pg-bus.js';
import { until } from '../helpers/wait.js';
import { createTestDatabase, pgTestUrl, reportSkipped, type TestDatabase } from './pg.js';

type Stored = Extract<TrackerEvent, { kind: 'messages_stored' }>;

const stored = (origin: string, streams: Stored['streams']): Stored => ({
  kind: 'messages_stored',
  origin,
  streams,
  at: Date.now(),
});

if (pgTestUrl() === undefined) {
  reportSkipped('the event bus tests');
  it.skip('the cluster event bus (needs COTERIE_TEST_PG_URL)', () => {});
} else {
  let db: TestDatabase | undefined;
  const buses: EventBus[] = [];
  afterAll(async () => {
    for (const b of buses) await b.close();
    await db?.drop();
  });

  /** Tracker `id`'s bus; while `refused()` no new connection to PostgreSQL can be had. */
  const bus = async (id: string, refused: () => boolean = () => false) => {
    db ??= await createTestDatabase();
    const url = db.url;
    const b = await createPgEventBus({
      trackerId: id,
      logger: pino({ level: 'silent' }),
      connection: async () => {
        if (refused()) throw new Error('PostgreSQL unreachable (test)');
        return { config: { connectionString: url }, lost: () => {} };
      },
    });
    buses.push(b);
    return b;
  };

  /** The stream ranges of the messages_stored events `b` hears, as "stream:from-to". */
  const rangesHeard = (b: EventBus) => {
    const heard: string[] = [];
    b.subscribe((e) => {
      if (e.kind === 'messages_stored') for (const r of e.streams) heard.push(`${r.s}:${r.from}-${r.to}`);
    });
    return heard;
  };

  it('keeps an announcement whose NOTIFY failed a whole round and sends it when PostgreSQL takes it again', async () => {
    let refused = false;
    const a = await bus('bus-a', () => refused);
    const b = await bus('bus-b');
    const heard = rangesHeard(b);
    await a.publish(stored('bus-a', [{ s: 'd:ann:bea', from: 1, to: 1 }]));
    await until('B hears the first announcement', async () => heard.length === 1, 10_000);

    // The notify connection's backend goes, and no new connection can be had: every try fails.
    refused = true;
    const admin = new pg.Client({ connectionString: db!.url });
    await admin.connect();
    try {
      const killed = await admin.query(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'coterie-notify-bus-a'",
      );
      expect(killed.rows).toEqual([{ ok: true }]);
    } finally {
      await admin.end();
    }
    await a.publish(stored('bus-a', [{ s: 'd:ann:bea', from: 2, to: 3 }]));
    // Published behind the failed round: merged with it (one range per stream).
    await a.publish(stored('bus-a', [{ s: 'd:ann:bea', from: 4, to: 4 }]));
    await a.publish(stored('bus-a', [{ s: 'd:ann:cal', from: 1, to: 1 }]));
    expect(heard).toEqual(['d:ann:bea:1-1']);

    refused = false;
    await until('B hears what A kept', async () => heard.length === 3, 10_000);
    expect(heard.slice(1).sort()).toEqual(['d:ann:bea:2-4', 'd:ann:cal:1-1']);
  });

  it('splits an announcement over many streams across payloads instead of dropping it', async () => {
    const a = await bus('bus-c');
    const b = await bus('bus-d');
    const heard = rangesHeard(b);
    // A batch of sends over 400 conversations between users with long ids: about 40 KB of ranges.
    const streams = Array.from({ length: 400 }, (_, i) => ({
      s: directStreamId(`user-with-a-rather-long-name-${i}`, `another-user-with-a-long-name-${i}`),
      from: 1,
      to: 2,
    }));
    await a.publish(stored('bus-c', streams));
    await until('B hears every stream', async () => heard.length === streams.length, 10_000);
    expect(new Set(heard)).toEqual(new Set(streams.map((r) => `${r.s}:1-2`)));
  });
}
