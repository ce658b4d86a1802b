// The store survives its primary: a PostgreSQL primary with a synchronous
// standby (scripts/pg-replica-set.sh), two trackers given a multi-host URL
// whose first host is the standby. Two senders write without pause; the
// primary is SIGKILLed mid-run, /readyz fails while no primary answers, the
// standby is promoted, the trackers follow it. Every acknowledged message is
// stored exactly once, in order, and reached the recipient's live session
// (whose tracker's LISTEN connection moved to the new primary too).
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Health, MessageSent, StoredMessage } from '../../src/protocol/api.js';
import { until } from '../helpers/cli-harness.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import {
  client,
  openSession,
  randomPeerId,
  type SessionClient,
  spawnTracker,
  type TrackerProcess,
} from '../helpers/tracker.js';
import { sharedKeyFile } from './pg.js';
import { havePostgresBinaries, type ReplicaSet, startReplicaSet } from './pg-replica-set.js';

const TRACKER_FLAGS = ['--cluster-heartbeat-ms', '250', '--cluster-dead-after-ms', '1500'];
/** Each sender's messages after the promotion: enough to see the trackers serve again. */
const SENT_AFTER_PROMOTION = 15;

interface Acknowledged {
  body: string;
  streamId: string;
  seq: number;
}

if (!havePostgresBinaries()) {
  process.stderr.write('\n[cluster] SKIPPED the store failover tests: no PostgreSQL binaries\n\n');
  it.skip('store failover (needs the PostgreSQL binaries)', () => {});
} else {
  describe('trackers follow the PostgreSQL primary', () => {
    const root = suiteTempDir('coterie-failover-').path;
    let rs: ReplicaSet | undefined;
    const trackers: TrackerProcess[] = [];
    const sessions: SessionClient[] = [];

    afterAll(async () => {
      for (const s of sessions) await s.close();
      for (const t of trackers) await t.stop('SIGKILL');
      if (process.env.FAILOVER_DEBUG) for (const t of trackers) process.stderr.write(t.output());
      await rs?.stop();
    }, 60_000);

    const health = async (url: string) => (await client(url).call<Health>('GET', '/healthz')).body;
    const ready = async (url: string) => (await client(url).call('GET', '/readyz')).status;

    /** Sends one message until acknowledged: a 503 or a lost connection is retried with the same client id. */
    const sendUntilAcknowledged = async (url: string, token: string, to: string, body: string) => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        const r = await client(url)
          .call<MessageSent>('POST', '/v1/messages', { token, body: { to, clientId: body, body } })
          .catch(() => undefined);
        if (r !== undefined && (r.status === 201 || r.status === 200)) return r.body;
        if (r !== undefined && r.status !== 503) throw new Error(`send ${body}: ${r.status} ${r.text}`);
        if (r !== undefined) expect(r.headers['retry-after']).toBeDefined();
        if (Date.now() > deadline) throw new Error(`send ${body}: no answer within a minute`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };

    it('loses no acknowledged message when the primary is killed and its synchronous standby promoted', async () => {
      rs = await startReplicaSet(1, 'sync');
      // The standby first: the trackers must pass it over for the primary.
      const storeUrl = rs.url(['n1', 'n0']);
      for (const i of [0, 1]) {
        trackers.push(
          await spawnTracker(join(root, `t${i}`), [
            '--store',
            storeUrl,
            ...sharedKeyFile(root),
            ...TRACKER_FLAGS,
          ]),
        );
      }
      const [t0, t1] = trackers as [TrackerProcess, TrackerProcess];
      expect((await health(t0.url)).store).toMatchObject({
        dialect: 'postgres',
        primary: rs.host('n0'),
        acknowledgedOn: 'several-machines',
        syncStandbys: 1,
      });
      expect(await ready(t0.url)).toBe(200);

      const c = client(t0.url);
      const alice = await c.user('fo-alice');
      const carol = await c.user('fo-carol');
      const bob = await c.user('fo-bob');
      // Bob listens on t1; alice sends through t0, carol through t1.
      const live = await openSession(t1.url, bob);
      sessions.push(live);
      live.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
      await live.next('welcome');
      await live.next('synced');
      const pushed: StoredMessage[] = [];
      let listening = true;
      const draining = (async () => {
        while (listening && live.ws.readyState === live.ws.OPEN) {
          const m = await live.next('messages', 300).catch(() => undefined);
          if (m !== undefined) pushed.push(...(m as unknown as { items: StoredMessage[] }).items);
        }
      })();

      const acknowledged: Acknowledged[] = [];
      let promotedAt: number | undefined;
      let firstAfterPromotion: number | undefined;
      const sender = async (name: string, token: string, url: string) => {
        let afterPromotion = 0;
        for (let i = 0; afterPromotion < SENT_AFTER_PROMOTION; i++) {
          const body = `${name}-${i}`;
          const sent = await sendUntilAcknowledged(url, token, 'fo-bob', body);
          acknowledged.push({ body, streamId: sent.streamId, seq: sent.seq });
          if (promotedAt !== undefined) {
            afterPromotion++;
            firstAfterPromotion ??= Date.now() - promotedAt;
          }
        }
      };
      const sending = Promise.all([sender('alice', alice, t0.url), sender('carol', carol, t1.url)]);

      await until('messages acknowledged before the kill', () => acknowledged.length >= 30, 20_000);
      await rs.kill('n0');
      // No primary answers: both trackers say so (while requests get 503 with retry-after).
      await until(
        '/readyz failing',
        async () => (await ready(t0.url)) === 503 && (await ready(t1.url)) === 503,
        20_000,
      );
      const beforePromotion = acknowledged.length;
      await rs.promote('n1');
      promotedAt = Date.now();
      await sending;

      expect(acknowledged.length).toBeGreaterThan(beforePromotion);
      expect(await ready(t0.url)).toBe(200);
      for (const t of trackers) {
        // A promoted standby with no standby of its own: acknowledged writes are on one machine now.
        expect((await health(t.url)).store).toMatchObject({
          primary: rs.host('n1'),
          acknowledgedOn: 'one-machine',
        });
      }

      // The live session on t1 got every acknowledged message (its LISTEN moved, it caught up), in order.
      const wanted = new Set(acknowledged.map((a) => a.body));
      await until(
        'pushes after failover',
        () => wanted.size === new Set(pushed.map((m) => m.body)).size,
        15_000,
      ).catch((err: Error) => {
        const got = new Set(pushed.map((m) => m.body));
        throw new Error(`${err.message}: missing ${[...wanted].filter((b) => !got.has(b)).join(', ')}`);
      });
      listening = false;
      await draining;
      checkInOrder(pushed);

      // A new session for bob gets the whole backlog from the new primary: each message once.
      const fresh = await openSession(t0.url, bob);
      sessions.push(fresh);
      fresh.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
      const backlog: StoredMessage[] = [];
      for (;;) {
        const m = await fresh.next(['messages', 'synced'], 10_000);
        if (m.type === 'synced') break;
        backlog.push(...(m as unknown as { items: StoredMessage[] }).items);
      }
      expect(backlog.map((m) => m.body).sort()).toEqual([...wanted].sort());
      for (const a of acknowledged) {
        expect(backlog.find((m) => m.body === a.body)).toMatchObject({ streamId: a.streamId, seq: a.seq });
      }
      checkInOrder(backlog);
      process.stderr.write(
        `[failover] ${acknowledged.length} acknowledged (${beforePromotion} before the promotion); first after promotion in ${firstAfterPromotion} ms\n`,
      );
    }, 240_000);

    it('refuses to start with --require-sync-standby when the primary has no synchronous standby', async () => {
      // n1 is the primary now, with no standby of its own.
      const dataDir = join(root, 'strict');
      const started = Date.now();
      await expect(
        spawnTracker(dataDir, ['--store', rs!.url(['n1']), '--require-sync-standby', ...sharedKeyFile(root)]),
      ).rejects.toThrow(/exited with 1 before listening[\s\S]*--require-sync-standby wants a primary/);
      // Refused at once, not after waiting for a primary that will not change.
      expect(Date.now() - started).toBeLessThan(10_000);
    }, 60_000);
  });
}

/** Per stream, the first delivery of each seq comes in increasing order. */
function checkInOrder(messages: StoredMessage[]): void {
  const last = new Map<string, number>();
  const seen = new Set<string>();
  for (const m of messages) {
    if (seen.has(m.messageId)) continue;
    seen.add(m.messageId);
    expect(m.seq, `${m.body} in ${m.streamId}`).toBeGreaterThan(last.get(m.streamId) ?? 0);
    last.set(m.streamId, m.seq);
  }
}
