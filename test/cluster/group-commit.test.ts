// Group commit on PostgreSQL (services/messages/write-queue.ts, write-messages-pg.ts): many
// conversations sending at once through three trackers, whose batches carry many streams each
// and meet in the same lanes; one tracker is SIGKILLed while its batches are in flight, and the
// senders it was serving retry (same client id) through another. Every acknowledged message is
// stored exactly once, with the stream and seq it was acknowledged with; every conversation's
// seqs run 1, 2, 3… without a gap, in the order its sends were made; nothing sent is lost.
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { client, spawnTracker, type TrackerProcess, tempDir } from '../helpers/tracker.js';
import { MessageLedger } from './message-ledger.js';
import { createTestDatabase, pgTestUrl, reportSkipped, sharedKeyFile, type TestDatabase } from './pg.js';

const SENDERS = 8;
const RECIPIENTS = 3;
/** Sends per conversation, one after the other (a conversation's order is its sends' order). */
const SENDS = 30;
/** The tracker killed once every conversation has made this many sends. */
const KILL_AFTER = 8;
/** A tracker start costs ~1.4 CPU-s (chaos.test.ts measured it): on a loaded machine it takes longer than 15 s. */
const START_MS = 60_000;

if (pgTestUrl() === undefined) {
  reportSkipped('the group commit test');
  it.skip('group commit (needs COTERIE_TEST_PG_URL)', () => {});
} else {
  let db: TestDatabase | undefined;
  afterAll(async () => {
    await db?.drop();
  });

  it('stores every acknowledged message once, in order and without gaps, through a SIGKILL mid-batch', async () => {
    const root = tempDir('coterie-group-commit-').path;
    db = await createTestDatabase();
    const trackers: TrackerProcess[] = [];
    for (let i = 0; i < 3; i++)
      trackers.push(
        await spawnTracker(join(root, `t${i}`), ['--store', db.url, ...sharedKeyFile(root)], {
          startMs: START_MS,
        }),
      );
    const alive = new Set(trackers);

    const api = client(trackers[0]!.url);
    const senders = Array.from({ length: SENDERS }, (_, i) => `s${i}`);
    const recipients = Array.from({ length: RECIPIENTS }, (_, i) => `r${i}`);
    const tokens = new Map<string, string>();
    for (const u of [...senders, ...recipients]) tokens.set(u, await api.user(u));

    const ledger = new MessageLedger();
    /** body → the stream and seq its acknowledgement named. */
    const acked = new Map<string, string>();
    let retriedAfterKill = 0;
    /** Sends waiting for their answer, per tracker. */
    const inFlight = new Map<TrackerProcess, number>();
    const progress = new Map<string, number>();
    let killed: Promise<void> | undefined;
    const victim = trackers[1]!;
    // The victim is frozen (SIGSTOP) with its batches in flight, then SIGKILLed once sends made to it
    // since cannot have been answered: killed at once, CI's Node 24 runs twice found it had answered
    // every send it held (retriedAfterKill 0), the check below then proving nothing.
    let frozen = false;
    let sentWhileFrozen = 0;
    let conversationsDone = 0;
    const freeze = () => {
      frozen = true;
      victim.proc.kill('SIGSTOP');
    };
    /** Killed after three sends to it while frozen, or when every conversation left waits on it. */
    const killIfHeld = () => {
      const left = SENDERS * RECIPIENTS - conversationsDone;
      if (!frozen || killed !== undefined || sentWhileFrozen < Math.min(3, left)) return;
      alive.delete(victim);
      killed = victim.stop('SIGKILL').then(() => {});
    };

    /** One send, retried with its client id through the trackers alive until one acknowledges it. */
    async function send(sender: string, to: string, k: number, via: number): Promise<void> {
      const body = `${sender}->${to} #${k}`;
      const clientId = `c-${sender}-${to}-${k}`;
      ledger.sending(body, sender, [to]);
      for (let attempt = 0; attempt < 20; attempt++) {
        const list = trackers.filter((t) => alive.has(t));
        const t = list[(via + attempt) % list.length]!;
        inFlight.set(t, (inFlight.get(t) ?? 0) + 1);
        if (frozen && t === victim) {
          sentWhileFrozen++;
          killIfHeld();
        }
        const r = await client(t.url)
          .call<{ streamId: string; seq: number }>('POST', '/v1/messages', {
            token: tokens.get(sender)!,
            body: { to, clientId, body },
          })
          .catch(() => undefined)
          .finally(() => inFlight.set(t, inFlight.get(t)! - 1));
        // 200 + duplicate: an earlier attempt was committed but its answer was lost (its tracker
        // was SIGKILLed between the commit and the reply); the retry is told the same stream and seq.
        if (
          r?.status === 201 ||
          (r?.status === 200 && (r.body as { duplicate?: boolean }).duplicate === true)
        ) {
          ledger.accepted(body, r.body.streamId, r.body.seq);
          acked.set(body, `${r.body.streamId}#${r.body.seq}`);
          return;
        }
        if (r !== undefined && r.status !== 503) throw new Error(`${body}: ${r.status} ${r.text}`);
        if (!alive.has(t)) retriedAfterKill++;
        await new Promise((res) => setTimeout(res, 20 * attempt));
      }
      throw new Error(`${body}: no tracker acknowledged it`);
    }

    const conversations = senders.flatMap((s, i) =>
      recipients.map(async (r, j) => {
        const key = `${s}->${r}`;
        for (let k = 1; k <= SENDS; k++) {
          await send(s, r, k, i + j + k);
          progress.set(key, k);
          // Frozen while sends to it are in flight: at the first moment when none was, CI's Node 24
          // run killed it with nothing to retry.
          if (
            !frozen &&
            [...progress.values()].filter((n) => n >= KILL_AFTER).length === SENDERS * RECIPIENTS &&
            (inFlight.get(victim) ?? 0) >= 3
          )
            freeze();
        }
        conversationsDone++;
        killIfHeld();
      }),
    );
    await Promise.all(conversations);
    await killed;
    expect(killed).toBeDefined();

    // What the senders were told: each conversation's seqs in the order its sends were made.
    expect(ledger.sendOrderBroken()).toEqual([]);
    expect(ledger.acceptedCount()).toBe(SENDERS * RECIPIENTS * SENDS);

    // What the store holds: each send once, where it was acknowledged; seqs 1..n, n the stream's last.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      const rows = (
        await c.query<{ stream_id: string; seq: string; body: string; client_id: string }>(
          'SELECT stream_id, seq, body, client_id FROM messages ORDER BY stream_id, seq',
        )
      ).rows;
      expect(rows).toHaveLength(SENDERS * RECIPIENTS * SENDS);
      expect(new Set(rows.map((r) => r.body)).size).toBe(rows.length);
      for (const r of rows) expect(`${r.stream_id}#${r.seq}`).toBe(acked.get(r.body));
      const streams = (
        await c.query<{ stream_id: string; last_seq: string }>('SELECT stream_id, last_seq FROM streams')
      ).rows;
      expect(streams).toHaveLength(SENDERS * RECIPIENTS);
      for (const s of streams) {
        const seqs = rows.filter((r) => r.stream_id === s.stream_id).map((r) => Number(r.seq));
        expect(seqs).toEqual(Array.from({ length: SENDS }, (_, i) => i + 1));
        expect(Number(s.last_seq)).toBe(SENDS);
        // In the order of the sends: #k has seq k.
        const bodies = rows
          .filter((r) => r.stream_id === s.stream_id)
          .map((r) => Number(r.body.split('#')[1]));
        expect(bodies).toEqual(seqs);
      }
    } finally {
      await c.end();
    }
    // The kill met sends in flight (so some were retried elsewhere), or the test proved nothing about it.
    expect(retriedAfterKill).toBeGreaterThan(0);
  }, 180_000);
}
