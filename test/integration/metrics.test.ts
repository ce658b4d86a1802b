// /metrics (issue 21): the tracker's latency histogram moves under load, the process's default
// metrics, message write latency and batch sizes, sessions by state, the PostgreSQL pool; and a
// peer's transfer counters on its control port, behind its token.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomFile } from '../../bench/lib/random-file.js';
import { createTestDatabase, pgTestUrl } from '../cluster/pg.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { sample, scrapePeer, scrapeTracker } from '../helpers/metrics.js';
import { client, greet, openSession, request, spawnTracker, tempDir } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';

const HEALTHZ = { method: 'GET', route: '/healthz' };

describe('tracker /metrics', () => {
  it('moves the per-route latency histogram under load, and reports the process, message writes and sessions by state', async () => {
    const dir = tempDir();
    try {
      const t = await spawnTracker(dir.path);
      const before = await scrapeTracker(t.url);
      const N = 60;
      for (let i = 0; i < N; i += 10) {
        await Promise.all(Array.from({ length: 10 }, () => request(t.url, 'GET', '/healthz')));
      }
      const after = await scrapeTracker(t.url);
      const moved = (text: string, le: string) =>
        sample(text, 'coterie_http_request_seconds_bucket', { ...HEALTHZ, le });
      expect(sample(after, 'coterie_http_request_seconds_count', HEALTHZ)).toBe(
        sample(before, 'coterie_http_request_seconds_count', HEALTHZ) + N,
      );
      expect(moved(after, '+Inf') - moved(before, '+Inf')).toBe(N);
      // The requests landed in finite buckets (each under 2.5 s), not only in +Inf.
      expect(moved(after, '2.5') - moved(before, '2.5')).toBeGreaterThan(0);
      expect(sample(after, 'coterie_http_request_seconds_sum', HEALTHZ)).toBeGreaterThan(
        sample(before, 'coterie_http_request_seconds_sum', HEALTHZ),
      );
      // The process's default metrics.
      for (const name of [
        'process_cpu_seconds_total',
        'process_resident_memory_bytes',
        'nodejs_eventloop_lag_seconds',
      ]) {
        expect(after, name).toMatch(new RegExp(`^${name} `, 'm'));
      }

      const api = client(t.url);
      const alice = await api.user('alice');
      await api.user('bob');
      const sessionBefore = await scrapeTracker(t.url);
      const session = await openSession(t.url, alice);
      await until(
        'a session waiting for its hello',
        async () => sample(await scrapeTracker(t.url), 'coterie_sessions_by_state', { state: 'hello' }) === 1,
      );
      await greet(session);
      await until(
        'the session live',
        async () => sample(await scrapeTracker(t.url), 'coterie_sessions_by_state', { state: 'live' }) === 1,
      );
      expect(sample(sessionBefore, 'coterie_sessions_by_state', { state: 'live' })).toBe(0);

      for (let i = 0; i < 5; i++) {
        const r = await api.call('POST', '/v1/messages', {
          token: alice,
          body: { to: 'bob', clientId: `m${i}`, body: `hello ${i}` },
        });
        expect(r.status).toBe(201);
      }
      const written = await scrapeTracker(t.url);
      // Five sends, one after another: five transactions of one message each (a group commit of one).
      expect(sample(written, 'coterie_message_batch_size_count')).toBe(5);
      expect(sample(written, 'coterie_message_batch_size_sum')).toBe(5);
      expect(sample(written, 'coterie_message_commit_seconds_count')).toBe(5);
      // SQLite: no pool series.
      expect(written).not.toMatch(/^coterie_pg_pool_connections\{/m);
    } finally {
      dir.remove();
    }
  }, 90_000);

  it.skipIf(pgTestUrl() === undefined)(
    'reports the PostgreSQL pool (total, idle, waiting)',
    async () => {
      const db = await createTestDatabase();
      const dir = tempDir();
      try {
        const t = await spawnTracker(dir.path, ['--store', db.url]);
        await client(t.url).user('carol');
        const text = await scrapeTracker(t.url);
        expect(sample(text, 'coterie_pg_pool_connections', { state: 'total' })).toBeGreaterThan(0);
        expect(sample(text, 'coterie_pg_pool_connections', { state: 'total' })).toBeLessThanOrEqual(10);
        expect(text).toMatch(/^coterie_pg_pool_connections\{state="idle"\} \d+$/m);
        expect(sample(text, 'coterie_pg_pool_connections', { state: 'waiting' })).toBe(0);
        await t.stop();
      } finally {
        dir.remove();
        await db.drop();
      }
    },
    60_000,
  );
});

describe('peer /metrics on the control port', () => {
  it('counts bytes up and down, pieces verified and failed, and connections; refuses a wrong token', async () => {
    const swarm = cliSwarm<'alice' | 'bob'>('coterie-metrics-');
    const shared = join(swarm.root, 'files', 'doc.bin');
    mkdirSync(join(swarm.root, 'files'));
    const SIZE = 3 * 1024 * 1024 + 12_345;
    await randomFile(shared, SIZE);
    const dl = join(swarm.root, 'dl');
    mkdirSync(dl);
    await swarm.startTracker();
    for (const n of ['alice', 'bob'] as const) await swarm.startPeer(n);
    for (const n of ['alice', 'bob'] as const) {
      await swarm.typed(n, `${n}-password\n`, 'create_user', n, '-');
      await swarm.typed(n, `${n}-password\n`, 'login', n, '-');
    }
    const fresh = (await scrapePeer(swarm.dir('bob'))).text;
    expect(sample(fresh, 'coterie_peer_downloaded_bytes_total')).toBe(0);
    expect(fresh).toMatch(/^process_cpu_seconds_total /m);

    await swarm.ok('alice', 'create_group', 'films');
    await swarm.ok('bob', 'join_group', 'films');
    await swarm.ok('alice', 'accept_request', 'films', 'bob');
    await swarm.ok('alice', 'upload_file', shared, 'films');
    await swarm.ok('bob', 'download_file', 'films', 'doc.bin', dl, '--wait');

    const bob = await scrapePeer(swarm.dir('bob'));
    expect(bob.status).toBe(200);
    expect(sample(bob.text, 'coterie_peer_downloaded_bytes_total')).toBe(SIZE);
    expect(sample(bob.text, 'coterie_peer_pieces_verified_total')).toBeGreaterThan(0);
    expect(sample(bob.text, 'coterie_peer_pieces_failed_total')).toBe(0);
    // The download ended: its seeder connections are closed.
    expect(sample(bob.text, 'coterie_peer_connections', { direction: 'out' })).toBe(0);
    const alice = await scrapePeer(swarm.dir('alice'));
    expect(sample(alice.text, 'coterie_peer_uploaded_bytes_total')).toBeGreaterThanOrEqual(SIZE);
    expect(sample(alice.text, 'coterie_peer_downloaded_bytes_total')).toBe(0);
    expect(alice.text).toMatch(/^coterie_peer_connections\{direction="in"\} \d+$/m);

    const refused = await scrapePeer(swarm.dir('bob'), 'not-the-token');
    expect(refused.status).toBe(401);
    expect(refused.text).not.toContain('coterie_peer');
  }, 120_000);
});
