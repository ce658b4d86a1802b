// A tracker given a multi-host store URL that lists only standbys (issue 22): a primary n0 with
// two synchronous standbys n1, n2 (scripts/pg-replica-set.sh), the tracker given n1,n2 alone.
// It cannot migrate or serve, but it is not silent: it says it waits, /healthz answers, /readyz
// and every request (a session's upgrade too) get 503 UNAVAILABLE with why and a retry hint at
// once. Then the primary dies and n1 is promoted: the tracker finds it by itself, serves and
// takes writes, and never held a store connection to a standby.
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { pinnedConnection } from '../../bench/lib/tracker-pins.js';
import type { Health, MessageSent } from '../../src/protocol/api.js';
import { until } from '../helpers/cli-harness.js';
import { suiteTempDir } from '../helpers/temp-dir.js';
import { client, spawnTracker } from '../helpers/tracker.js';
import { sharedKeyFile } from './pg.js';
import { havePostgresBinaries, type ReplicaSet, startReplicaSet } from './pg-replica-set.js';

/** A waiting tracker answers at once: a request that takes longer is a hang. */
const ANSWER_MS = 4_000;

/** The tracker's connections (store pool, LISTEN, NOTIFY) open on a server, probes aside. */
async function trackerConnections(rs: ReplicaSet, node: string): Promise<string[]> {
  const c = new pg.Client({ connectionString: `postgres://postgres@${rs.host(node)}/postgres` });
  await c.connect();
  try {
    const r = await c.query<{ app: string }>(
      "SELECT application_name AS app FROM pg_stat_activity WHERE application_name LIKE 'coterie%' AND application_name <> 'coterie-probe'",
    );
    return r.rows.map((row) => row.app);
  } finally {
    await c.end();
  }
}

/** A session's WebSocket upgrade: the status and retry hint of its refusal, or 101. */
function upgrade(base: string): Promise<{ status: number; retryAfter?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/session`, {
      ...pinnedConnection(base),
      headers: { authorization: 'Bearer nobody' },
    });
    ws.on('error', () => {});
    ws.once('open', () => {
      ws.terminate();
      resolve({ status: 101, body: '' });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          ...(res.headers['retry-after'] === undefined ? {} : { retryAfter: res.headers['retry-after'] }),
          body,
        }),
      );
      res.on('error', reject);
    });
  });
}

if (!havePostgresBinaries()) {
  process.stderr.write('\n[cluster] SKIPPED the standbys-only store test: no PostgreSQL binaries\n\n');
  it.skip('standbys-only store (needs the PostgreSQL binaries)', () => {});
} else {
  describe('a tracker given only standbys', () => {
    const root = suiteTempDir('coterie-standbys-').path;
    let rs: ReplicaSet | undefined;

    afterAll(async () => {
      await rs?.stop();
    }, 60_000);

    const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      const started = Date.now();
      const value = await fn();
      expect(Date.now() - started, `${what} answered in`).toBeLessThan(ANSWER_MS);
      return value;
    };

    it('waits with /readyz failing and UNAVAILABLE answers, then follows the promoted standby', async () => {
      rs = await startReplicaSet(2, 'sync');
      const tracker = await spawnTracker(
        join(root, 't0'),
        ['--store', rs.url(['n1', 'n2']), ...sharedKeyFile(root), '--log-level', 'info'],
        { until: 'waiting' },
      );
      // It says why it waits, naming both hosts (each a standby, unless its probe timed out under load).
      const said =
        /waiting for the store's primary \((no primary yet among [^\n]*a standby[^\n]*)\); answering/.exec(
          tracker.output(),
        );
      expect(said, tracker.output()).not.toBeNull();
      for (const node of ['n1', 'n2']) expect(said![1]).toContain(rs.host(node));
      const api = client(tracker.url);

      const health = await timed('/healthz', () => api.call<Health>('GET', '/healthz'));
      expect(health.status).toBe(200);
      expect(health.body.store).toEqual({ dialect: 'postgres' });
      const ready = await timed('/readyz', () => api.call('GET', '/readyz'));
      expect(ready.status).toBe(503);
      expect(ready.headers['retry-after']).toBe('1');
      expect(ready.body).toMatchObject({ error: { code: 'UNAVAILABLE', details: { retryAfterSeconds: 1 } } });
      expect(ready.text).toContain(said![1]);
      // A peer's calls: an account, a login, a session. Each refused at once, with the hint.
      for (const [method, path] of [
        ['POST', '/v1/users'],
        ['POST', '/v1/login'],
        ['GET', '/v1/groups'],
      ] as const) {
        const r = await timed(path, () =>
          api.call(
            method,
            path,
            method === 'POST' ? { body: { userId: 'sb-alice', password: 'x'.repeat(12) } } : {},
          ),
        );
        expect(r.status, path).toBe(503);
        expect(r.headers['retry-after'], path).toBe('1');
        expect(r.body, path).toMatchObject({ error: { code: 'UNAVAILABLE' } });
      }
      const session = await timed('session upgrade', () => upgrade(tracker.url));
      expect(session).toMatchObject({ status: 503, retryAfter: '1' });
      expect(JSON.parse(session.body)).toMatchObject({ error: { code: 'UNAVAILABLE' } });
      // Still waiting a few probe rounds later, and no store connection to either standby.
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await api.call('GET', '/readyz')).status).toBe(503);
      expect(await trackerConnections(rs, 'n1')).toEqual([]);
      expect(await trackerConnections(rs, 'n2')).toEqual([]);
      expect(tracker.output()).not.toMatch(/listening on/);

      // A failover: the primary dies, n1 is promoted. The tracker takes n1 by itself.
      await rs.kill('n0');
      await rs.promote('n1');
      const promotedAt = Date.now();
      await until('the tracker listening', () => /listening on/.test(tracker.output()), 45_000);
      await until('/readyz ok', async () => (await api.call('GET', '/readyz')).status === 200, 10_000);
      const recoveredMs = Date.now() - promotedAt;
      expect((await api.call<Health>('GET', '/healthz')).body.store).toMatchObject({
        dialect: 'postgres',
        primary: rs.host('n1'),
      });

      // Writes are accepted: accounts, a message stored on the new primary.
      const alice = await api.user('sb-alice');
      await api.user('sb-bob');
      const sent = await api.call<MessageSent>('POST', '/v1/messages', {
        token: alice,
        body: { to: 'sb-bob', clientId: 'after-promotion', body: 'hello after the promotion' },
      });
      expect(sent.status).toBe(201);
      const n1 = new pg.Client({ connectionString: `postgres://postgres@${rs.host('n1')}/coterie_test` });
      await n1.connect();
      try {
        const r = await n1.query('SELECT body FROM messages WHERE message_id = $1', [sent.body.messageId]);
        expect(r.rowCount).toBe(1);
      } finally {
        await n1.end();
      }
      // The tracker's connections are on the new primary; none ever went to the standby left.
      expect((await trackerConnections(rs, 'n1')).length).toBeGreaterThan(0);
      expect(await trackerConnections(rs, 'n2')).toEqual([]);
      const found = [...tracker.output().matchAll(/"primary":"([^"]+)"[^\n]*store primary found/g)].map(
        (m) => m[1],
      );
      // Every primary it took was the promoted node (twice if a probe raced the promotion's end).
      expect(found.length).toBeGreaterThan(0);
      expect(found.filter((host) => host !== rs!.host('n1'))).toEqual([]);
      process.stderr.write(`[standbys-only] serving ${recoveredMs} ms after pg_ctl promote returned\n`);
    }, 150_000);
  });
}
