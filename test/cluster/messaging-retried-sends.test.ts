// Sends whose batch failed after a commit, and sends retried after a commit nobody announced:
// the recipients online must get every stored message then, without reconnecting, once and in
// order. Real failures on PostgreSQL:
// - a batch split between a new conversation's transaction (write-messages.ts) and the one
//   statement of known streams (write-messages-pg.ts), whose statement fails after the
//   transaction committed: a trigger the test installs in its own database raises once on one
//   body. The committed part is answered and pushed; only the other part fails;
// - a tracker SIGKILLed between its commit and its announcement (its fault hook), the send
//   retried through another tracker, which answers `duplicate`, before the cluster drops the
//   dead one (its dead-after is a minute here, so the catch-up that follows a drop-out cannot
//   be what delivers): the retry's tracker announces and pushes it.
import pg from 'pg';
import { expect, it } from 'vitest';
import { laneOfKey } from '../../src/core/index.js';
import { directStreamId } from '../../src/protocol/streams.js';
import { until } from '../helpers/cli-harness.js';
import { client, type SessionClient } from '../helpers/tracker.js';
import { describeWithPg } from './pg.js';
import { syncedSessions } from './sessions.js';

type Pushed = { streamId: string; seq: number; body: string };
type Answer = { type: string; id?: unknown; duplicate?: boolean; seq?: number; code?: string };

/** As write-queue.ts spreads streams on PostgreSQL. */
const LANES = 2;

describeWithPg(
  'sends of a batch that failed in part, or retried after a commit nobody announced',
  {
    prefix: 'coterie-retried-',
    flags: ['--cluster-heartbeat-ms', '500', '--cluster-dead-after-ms', '60000'],
  },
  (cluster) => {
    const { trackers } = cluster;
    const connect = syncedSessions();

    /** The pushes a session gets until `last` arrived; whatever else is pushed before it too. */
    async function pushedUntil(s: SessionClient, last: string, ms = 5_000): Promise<Pushed[]> {
      const got: Pushed[] = [];
      while (!got.some((m) => m.body === last)) {
        const frame = (await s.next('messages', ms)) as unknown as { items: Pushed[] };
        got.push(...frame.items);
      }
      return got;
    }

    /** The answers to a session's sends with these ids, by id. */
    async function answers(s: SessionClient, ids: string[]): Promise<Map<string, Answer>> {
      const out = new Map<string, Answer>();
      while (out.size < ids.length) {
        const a = (await s.next(['sent', 'error'])) as unknown as Answer;
        if (typeof a.id === 'string' && ids.includes(a.id)) out.set(a.id, a);
      }
      return out;
    }

    it("answers and pushes a split batch's committed part at once when its other part fails", async () => {
      const a = client(trackers[0]!.url);
      const alice = await a.user('sb-alice');
      const bob = await a.user('sb-bob');
      // Carol's conversation with alice (new: the transaction) shares a lane with bob's (known:
      // the statement), so that both go in one batch.
      const known = directStreamId('sb-alice', 'sb-bob');
      const carolName = [...Array(16).keys()]
        .map((i) => `sb-carol${i}`)
        .find((c) => laneOfKey(directStreamId('sb-alice', c), LANES) === laneOfKey(known, LANES))!;
      const carol = await a.user(carolName);

      const admin = new pg.Client({ connectionString: cluster.db.url });
      await admin.connect();
      const holder = new pg.Client({ connectionString: cluster.db.url });
      await holder.connect();
      try {
        // Raises once, at the first insert of the body 'boom' (a sequence: not undone by the rollback).
        await admin.query(`
          CREATE SEQUENCE test_fault_once;
          CREATE FUNCTION test_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN
            IF NEW.body = 'boom' AND nextval('test_fault_once') = 1 THEN
              RAISE EXCEPTION 'injected failure of the statement part';
            END IF;
            RETURN NEW;
          END $$;
          CREATE TRIGGER test_fail_once BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION test_fail_once();
        `);

        const aliceOnA = await connect(trackers[0]!.url, alice);
        const bobOnB = await connect(trackers[1]!.url, bob);
        const carolOnA = await connect(trackers[0]!.url, carol);
        const carolOnB = await connect(trackers[1]!.url, carol);
        const send = (id: string, to: string, body: string) =>
          aliceOnA.raw({ type: 'send', id, to, clientId: id, body });

        // Bob's conversation becomes known to A (its sends then take the statement).
        send('k1', 'sb-bob', 'k1');
        expect((await answers(aliceOnA, ['k1'])).get('k1')?.type).toBe('sent');

        // The lane's next batch waits on bob's stream row; what arrives meanwhile makes the batch after.
        await holder.query('BEGIN');
        await holder.query('SELECT 1 FROM streams WHERE stream_id = $1 FOR UPDATE', [known]);
        send('k2', 'sb-bob', 'k2');
        await until(
          'the batch of k2 waits on the row lock',
          async () =>
            (
              await admin.query(
                `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
              )
            ).rowCount! > 0,
          5_000,
        );
        send('n1', carolName, 'n1');
        send('boom', 'sb-bob', 'boom');
        // Frames are handled in order: once the ping is answered, both sends are queued.
        aliceOnA.raw({ type: 'ping', id: 'p1' });
        await aliceOnA.next('pong');
        await holder.query('COMMIT');

        const first = await answers(aliceOnA, ['k2', 'n1', 'boom']);
        expect(first.get('k2')?.type).toBe('sent');
        // The batch [n1, boom]: n1's transaction committed, then boom's statement failed. n1 is
        // answered as stored, and pushed at once to carol's sessions on both trackers.
        expect(first.get('n1')).toMatchObject({ type: 'sent', duplicate: false, seq: 1 });
        expect(first.get('boom')).toMatchObject({ type: 'error', code: 'UNAVAILABLE' });
        for (const s of [carolOnA, carolOnB]) {
          expect((await pushedUntil(s, 'n1')).map((m) => [m.seq, m.body])).toEqual([[1, 'n1']]);
        }

        // boom's sender retries it; n1's too, as one that lost its answer would: it comes back
        // duplicate, and its rows are announced again, which must push nothing twice.
        send('boom', 'sb-bob', 'boom');
        send('n1', carolName, 'n1');
        const retried = await answers(aliceOnA, ['n1', 'boom']);
        expect(retried.get('boom')).toMatchObject({ type: 'sent', duplicate: false, seq: 3 });
        expect(retried.get('n1')).toMatchObject({ type: 'sent', duplicate: true, seq: 1 });
        send('n2', carolName, 'n2');
        expect((await answers(aliceOnA, ['n2'])).get('n2')).toMatchObject({ type: 'sent', seq: 2 });
        for (const s of [carolOnA, carolOnB]) {
          expect((await pushedUntil(s, 'n2')).map((m) => [m.seq, m.body])).toEqual([[2, 'n2']]);
        }
        expect((await pushedUntil(bobOnB, 'boom')).map((m) => m.body)).toEqual(['k1', 'k2', 'boom']);
      } finally {
        await holder.query('ROLLBACK').catch(() => {});
        await holder.end();
        await admin.end();
      }
    });

    it('pushes a send committed by a tracker killed before announcing it, when the retry through another comes back duplicate', async () => {
      const c = await cluster.startTracker(2, [], { env: { COTERIE_FAULT_DIE_BEFORE_ANNOUNCE: '1' } });
      const a = client(trackers[0]!.url);
      const dan = await a.user('kd-dan');
      const eve = await a.user('kd-eve');
      const eveOnB = await connect(trackers[1]!.url, eve);
      const danOnA = await connect(trackers[0]!.url, dan);
      await until('B sees C', async () => {
        const r = await client(trackers[1]!.url).call<{ trackers: { url: string }[] }>('GET', '/v1/cluster');
        return r.body.trackers.some((t) => t.url === c.url);
      });
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        c.proc.once('exit', (_, signal) => resolve(signal)),
      );
      const answered = client(c.url)
        .call('POST', '/v1/messages', { token: dan, body: { to: 'kd-eve', clientId: 'e1', body: 'e1' } })
        .then(
          () => true,
          () => false,
        );
      expect(await exited).toBe('SIGKILL');
      expect(await answered).toBe(false);
      // Dan's peer sends again through A: the first copy is there.
      danOnA.raw({ type: 'send', id: 'e1', to: 'kd-eve', clientId: 'e1', body: 'e1' });
      expect((await answers(danOnA, ['e1'])).get('e1')).toMatchObject({
        type: 'sent',
        duplicate: true,
        seq: 1,
      });
      // C is still listed for a minute: no drop-out catch-up comes to eve's session on B.
      expect((await pushedUntil(eveOnB, 'e1')).map((m) => [m.seq, m.body])).toEqual([[1, 'e1']]);
      const r = await client(trackers[1]!.url).call<{ trackers: { url: string }[] }>('GET', '/v1/cluster');
      expect(r.body.trackers.some((t) => t.url === c.url)).toBe(true);
      danOnA.raw({ type: 'send', id: 'e2', to: 'kd-eve', clientId: 'e2', body: 'e2' });
      expect((await answers(danOnA, ['e2'])).get('e2')).toMatchObject({ type: 'sent', seq: 2 });
      expect((await pushedUntil(eveOnB, 'e2')).map((m) => [m.seq, m.body])).toEqual([[2, 'e2']]);
    });
  },
);
