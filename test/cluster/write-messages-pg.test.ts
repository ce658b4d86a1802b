// services/messages/write-messages-pg.ts on a real PostgreSQL store: a batch that mixes sends to
// known streams (one statement) with a new conversation's first sends (a transaction of
// write-messages.ts) answers each send in its place, numbers every stream from where it was
// without a gap, creates the new stream with both ends' cursors, and answers a retried send
// (same sender and client id) with its first copy whichever way it went; the statement's generic
// plan probes the messages table by key, never scans it. Neither way NOTIFYs in
// its transaction (a NOTIFY's commit holds the database-wide notify lock across its flush): every
// row stored is left for the caller to announce.
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { JobFailed } from '../../src/core/index.js';
import type { MessageSent } from '../../src/protocol/api.js';
import { parseStreamId } from '../../src/protocol/streams.js';
import { EVENTS_CHANNEL, type TrackerEvent } from '../../src/tracker/events/index.js';
import type { NewMessage } from '../../src/tracker/services/messages/write-messages.js';
import { SEND_BATCH_SQL, writeMessagesPg } from '../../src/tracker/services/messages/write-messages-pg.js';
import { openStore, type Store, toNumber } from '../../src/tracker/store/index.js';
import { createTestDatabase, pgTestUrl, reportSkipped, type TestDatabase } from './pg.js';

const send = (sender: string, streamId: string, clientId: string): NewMessage => ({
  sender,
  streamId,
  stream: parseStreamId(streamId)!,
  clientId,
  body: `${sender} ${clientId}`,
});

/** A batch's answers, every send written (none failed on its own). */
function answered(w: Awaited<ReturnType<typeof writeMessagesPg>>): MessageSent[] {
  return w.results.map((r) => {
    if (r instanceof JobFailed) throw r.error;
    return r;
  });
}

/** The messages_stored events heard on the bus's channel (a listener of the test's own). */
async function listenToStored(url: string) {
  const heard: Extract<TrackerEvent, { kind: 'messages_stored' }>[] = [];
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  c.on('notification', (n) => {
    const envelope = JSON.parse(n.payload!) as { o: string; e: TrackerEvent[] };
    for (const e of envelope.e) if (e.kind === 'messages_stored') heard.push(e);
  });
  await c.query(`LISTEN ${EVENTS_CHANNEL}`);
  // A round trip after the writes: notifications sent before it arrive before its answer.
  const settle = () => c.query('SELECT 1');
  return { heard, settle, close: () => c.end() };
}

if (pgTestUrl() === undefined) {
  reportSkipped('the split batch test');
  it.skip('a batch split between the statement and the transaction (needs COTERIE_TEST_PG_URL)', () => {});
} else {
  let db: TestDatabase | undefined;
  let store: Store | undefined;
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('writes a batch mixing known streams and a new one, each send answered in its place', async () => {
    db = await createTestDatabase();
    store = await openStore({ location: db.url });
    const known = new Set<string>();
    const directory = {
      streamKnown: (id: string) => known.has(id),
      topicRetention: new Map<string, { count: number | null; ms: number | null }>(),
    };
    const ab = 'd:alice:bob';
    const ac = 'd:alice:carol';
    const bc = 'd:bob:carol';
    // alice–bob and bob–carol exist (two messages each), through the transaction.
    const first = await writeMessagesPg(
      store,
      directory,
      [send('alice', ab, 'a1'), send('bob', bc, 'b1'), send('bob', ab, 'b2'), send('carol', bc, 'c1')],
      1000,
    );
    expect(first.stored).toHaveLength(4);
    expect(answered(first).map((r) => [r.streamId, r.seq])).toEqual([
      [ab, 1],
      [bc, 1],
      [ab, 2],
      [bc, 2],
    ]);
    known.add(ab).add(bc);

    // Known streams interleaved with a new conversation and a retry of each kind.
    const batch = [
      send('alice', ab, 'a2'),
      send('alice', ac, 'a3'), // new stream: the transaction
      send('bob', bc, 'b3'),
      send('alice', ab, 'a1'), // retried, known stream: the statement answers with the first copy
      send('carol', ac, 'c2'),
      send('alice', ab, 'a4'),
      send('alice', ac, 'a3'), // the same new send twice in the batch: answered with the first
    ];
    // Counted: the known streams' sends go in one statement, the new one's in one transaction.
    const calls = { statement: 0, transaction: 0 };
    const s = store;
    const counting: Pick<Store, 'statement' | 'transaction'> = {
      statement: (fn) => {
        calls.statement++;
        return s.statement(fn);
      },
      transaction: (fn) => {
        calls.transaction++;
        return s.transaction(fn);
      },
    };
    const bus = await listenToStored(db.url);
    const second = await writeMessagesPg(counting, directory, batch, 2000);
    await bus.settle();
    await bus.close();
    expect(calls).toEqual({ statement: 1, transaction: 1 });
    // Nothing announced in the transactions: the caller announces after the commit.
    expect(bus.heard).toEqual([]);
    expect(answered(second).map((r) => [r.streamId, r.seq, r.duplicate])).toEqual([
      [ab, 3, false],
      [ac, 1, false],
      [bc, 3, false],
      [ab, 1, true],
      [ac, 2, false],
      [ab, 4, false],
      [ac, 1, true],
    ]);
    expect(answered(second)[3]!.messageId).toBe(answered(first)[0]!.messageId);
    expect(answered(second)[6]!.messageId).toBe(answered(second)[1]!.messageId);
    // What was stored: the new sends only, each once.
    expect(second.stored.map((m) => `${m.streamId}#${m.seq}`).sort()).toEqual(
      [`${ab}#3`, `${ab}#4`, `${ac}#1`, `${ac}#2`, `${bc}#3`].sort(),
    );

    const rows = await store.db
      .selectFrom('messages')
      .select(['stream_id', 'seq', 'client_id'])
      .orderBy('stream_id')
      .orderBy('seq')
      .execute();
    expect(rows.map((r) => `${r.stream_id}#${toNumber(r.seq)}:${r.client_id}`)).toEqual([
      `${ab}#1:a1`,
      `${ab}#2:b2`,
      `${ab}#3:a2`,
      `${ab}#4:a4`,
      `${ac}#1:a3`,
      `${ac}#2:c2`,
      `${bc}#1:b1`,
      `${bc}#2:c1`,
      `${bc}#3:b3`,
    ]);
    const streams = await store.db.selectFrom('streams').select(['stream_id', 'last_seq']).execute();
    expect(Object.fromEntries(streams.map((s) => [s.stream_id, toNumber(s.last_seq)]))).toEqual({
      [ab]: 4,
      [ac]: 2,
      [bc]: 3,
    });
    const cursors = await store.db
      .selectFrom('cursors')
      .select('user_id')
      .where('stream_id', '=', ac)
      .orderBy('user_id')
      .execute();
    expect(cursors.map((c) => c.user_id)).toEqual(['alice', 'carol']);
  }, 60_000);
  it('sends no NOTIFY in a batch of many known streams: its rows are all for the caller to announce', async () => {
    const streams = Array.from({ length: 60 }, (_, i) => `d:m${String(i).padStart(2, '0')}:z`);
    const known = new Set<string>();
    const directory = { streamKnown: (id: string) => known.has(id), topicRetention: new Map() };
    const s = store!;
    await writeMessagesPg(
      s,
      directory,
      streams.map((id, i) => send(`m${i}`, id, 'first')),
      3000,
    );
    for (const id of streams) known.add(id);
    const bus = await listenToStored(db!.url);
    const batch = streams.flatMap((id, i) => [send(`m${i}`, id, 'second'), send(`m${i}`, id, 'third')]);
    const written = await writeMessagesPg(s, directory, batch, 4000);
    await bus.settle();
    await bus.close();
    expect(bus.heard).toEqual([]);
    expect(written.stored.map((m) => `${m.streamId}#${m.seq}`).sort()).toEqual(
      streams.flatMap((id) => [`${id}#2`, `${id}#3`]).sort(),
    );
  }, 60_000);

  it("finds retried sends by probing the key: the statement's generic plan never scans messages", async () => {
    const s = store!;
    const c = new pg.Client({ connectionString: db!.url });
    await c.connect();
    try {
      // As in a fresh cluster: a few hundred messages, not analyzed yet (no autovacuum here, so
      // that the plan does not depend on when it runs).
      await c.query('ALTER TABLE messages SET (autovacuum_enabled = false)');
      const streams = Array.from({ length: 20 }, (_, i) => `d:p${String(i).padStart(2, '0')}:z`);
      const known = new Set<string>();
      const directory = { streamKnown: (id: string) => known.has(id), topicRetention: new Map() };
      for (let round = 0; round < 15; round++) {
        await writeMessagesPg(
          s,
          directory,
          streams.map((id, i) => send(`p${i}`, id, `r${round}`)),
          5000 + round,
        );
        for (const id of streams) known.add(id);
      }
      const { rows } = await c.query<{ n: string }>('SELECT count(*) AS n FROM messages');
      expect(Number(rows[0]!.n)).toBeGreaterThan(400);
      // The plan a pool connection keeps from its sixth run on.
      await c.query('SET plan_cache_mode = force_generic_plan');
      await c.query(
        `PREPARE send_batch(text[], text[], text[], text[], text[], bigint) AS ${SEND_BATCH_SQL}`,
      );
      const plan = await c.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN EXECUTE send_batch('{d:p00:z}', '{x}', '{p0}', '{r0}', '{b}', 1)`,
      );
      const text = plan.rows.map((r) => r['QUERY PLAN']).join('\n');
      expect(text).toMatch(/Index Scan using messages_sender_client on messages/);
      expect(text).not.toMatch(/Seq Scan on messages/);
    } finally {
      await c.end();
    }
  }, 60_000);
}
