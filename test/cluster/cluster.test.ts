// Three trackers over one PostgreSQL: cross-tracker events (LISTEN/NOTIFY),
// cluster membership and its pushes, idempotency keys, and a peer failing
// over when its tracker is SIGKILLed while the user keeps typing commands.
import { join } from 'node:path';
import pg from 'pg';
import { expect, it } from 'vitest';
import { startPeerDaemon } from '../../src/peer/daemon.js';
import { EVENTS_CHANNEL } from '../../src/tracker/index.js';
import { until } from '../helpers/cli-harness.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { pipedShell } from '../helpers/shell-harness.js';
import { client, fakeManifest, greet, openSession, randomPeerId } from '../helpers/tracker.js';
import { describeWithPg, FAST_MEMBERSHIP_FLAGS } from './pg.js';

// Fast membership so that a dead tracker drops out within a second or two.
const CLUSTER_FLAGS = [
  ...FAST_MEMBERSHIP_FLAGS,
  '--heartbeat-interval-ms',
  '300',
  '--heartbeat-timeout-ms',
  '300',
];

type ClusterList = { trackers: { trackerId: string; url: string; sessions: number }[] };

describeWithPg(
  'three trackers on one PostgreSQL',
  // Started together: the migrations must serialize (advisory lock).
  { prefix: 'coterie-cluster-', trackers: 3, together: true, flags: CLUSTER_FLAGS },
  (cluster) => {
    const { trackers } = cluster;

    it('lists the live trackers with their load on every tracker', async () => {
      for (const t of trackers) {
        const list = await until('three listed', async () => {
          const r = await client(t.url).call<ClusterList>('GET', '/v1/cluster');
          return r.body.trackers.length === 3;
        }).then(async () => (await client(t.url).call<ClusterList>('GET', '/v1/cluster')).body);
        expect(list.trackers.map((m) => m.url).sort()).toEqual(trackers.map((x) => x.url).sort());
        expect(list.trackers[0]).toMatchObject({
          sessions: expect.any(Number),
          requestsPerSecond: expect.any(Number),
        });
      }
    });

    it('delivers join requests and seeder events across trackers', async () => {
      const [a, b, c] = trackers.map((t) => client(t.url)) as [
        ReturnType<typeof client>,
        ReturnType<typeof client>,
        ReturnType<typeof client>,
      ];
      const owner = await a.user('x-owner');
      const joiner = await b.user('x-joiner');
      await a.call('POST', '/v1/groups', { token: owner, body: { groupId: 'xg' } });

      // The owner is connected to A; the request is made through B.
      const ownerSession = await openSession(trackers[0]!.url, owner);
      await greet(ownerSession);
      const pushed = await ownerSession.next('cluster');
      expect(pushed).toMatchObject({ type: 'cluster' });
      await b.call('POST', '/v1/groups/xg/join', { token: joiner });
      expect(await ownerSession.next('join_requested')).toMatchObject({ groupId: 'xg', userId: 'x-joiner' });
      await c.call('POST', '/v1/groups/xg/requests/x-joiner/accept', { token: owner });

      // A seeder connected to C appears to and leaves a watcher connected to A.
      const f = fakeManifest('cross');
      const seederPeer = randomPeerId();
      await c.call('POST', '/v1/groups/xg/files', {
        token: joiner,
        body: { name: 'cross.bin', manifest: f.manifest, peerId: seederPeer },
      });
      ownerSession.raw({ type: 'watch', id: 'w1', files: [f.fileId] });
      expect(await ownerSession.next(['ack', 'error'])).toMatchObject({ type: 'ack', id: 'w1' });
      const seeder = await openSession(trackers[2]!.url, joiner);
      await greet(seeder, { peerId: seederPeer, addresses: ['127.0.0.1:9'], seeding: [f.fileId] });
      expect(await ownerSession.next('seeder_appeared')).toMatchObject({
        fileId: f.fileId,
        peerId: seederPeer,
      });
      const listed = await a.call<{ seeders: { peerId: string }[] }>(
        'GET',
        `/v1/groups/xg/files/${f.fileId}/seeders`,
        {
          token: owner,
        },
      );
      expect(listed.body.seeders.map((s) => s.peerId)).toEqual([seederPeer]);
      // Its addresses change on C: the watcher on A hears it (peer_moved, over the bus).
      seeder.raw({ type: 'addresses', id: 'm', addresses: ['127.0.0.1:10'] });
      await seeder.next('ack');
      expect(await ownerSession.next('peer_moved')).toMatchObject({
        peerId: seederPeer,
        addresses: ['127.0.0.1:10'],
      });
      await seeder.close();
      expect(await ownerSession.next('seeder_left')).toMatchObject({ fileId: f.fileId, peerId: seederPeer });
      await ownerSession.close();
    });

    it("drops NOTIFY payloads that are no tracker's events, and keeps delivering the real ones", async () => {
      const [a, b] = trackers.map((t) => client(t.url)) as [
        ReturnType<typeof client>,
        ReturnType<typeof client>,
      ];
      const owner = await a.user('n-owner');
      const joiner = await b.user('n-joiner');
      await a.call('POST', '/v1/groups', { token: owner, body: { groupId: 'ng' } });
      const ownerSession = await openSession(trackers[0]!.url, owner);
      await greet(ownerSession);
      // Anyone with the database's rights can NOTIFY on the channel.
      const other = new pg.Client({ connectionString: cluster.db.url });
      await other.connect();
      try {
        for (const payload of [
          'not json',
          'null',
          '5',
          '[]',
          '{"o":"elsewhere"}',
          '{"o":7,"e":[]}',
          '{"o":"elsewhere","e":[null,5,"x",{"kind":3},{}]}',
          '{"o":"elsewhere","e":[{"kind":"join_requested"}]}',
        ]) {
          await other.query('SELECT pg_notify($1, $2)', [EVENTS_CHANNEL, payload]);
        }
      } finally {
        await other.end();
      }
      // The request made through B still reaches the owner on A, and every tracker is up.
      await b.call('POST', '/v1/groups/ng/join', { token: joiner });
      expect(await ownerSession.next('join_requested')).toMatchObject({ groupId: 'ng', userId: 'n-joiner' });
      await ownerSession.close();
      for (const t of trackers) {
        expect(t.proc.exitCode).toBeNull();
        expect((await client(t.url).call('GET', '/v1/cluster')).status).toBe(200);
      }
    });

    it('answers a retried write from its idempotency key on any tracker, per caller', async () => {
      const a = client(trackers[0]!.url);
      const b = client(trackers[1]!.url);
      const u = await a.user('idem-user');
      const other = await a.user('idem-other');
      const key = 'k-123e4567-e89b';
      const first = await a.call('POST', '/v1/groups', {
        token: u,
        body: { groupId: 'idem-g' },
        headers: { 'idempotency-key': key },
      });
      expect(first.status).toBe(201);
      const again = await b.call('POST', '/v1/groups', {
        token: u,
        body: { groupId: 'idem-g' },
        headers: { 'idempotency-key': key },
      });
      expect(again.status).toBe(201);
      expect(again.headers['idempotent-replay']).toBe('true');
      expect(again.body).toEqual(first.body);
      // Another caller's key space is its own: the write runs (and is refused as a duplicate).
      const stranger = await b.call<{ error: { code: string } }>('POST', '/v1/groups', {
        token: other,
        body: { groupId: 'idem-g' },
        headers: { 'idempotency-key': key },
      });
      expect(stranger.body.error.code).toBe('GROUP_EXISTS');
      // A tracker killed after the commit, before recording the answer, leaves only the
      // marker its transaction wrote: the retry is answered as the first attempt was.
      const key2 = 'k-committed-unanswered';
      const made = await a.call('POST', '/v1/groups', {
        token: u,
        body: { groupId: 'idem-m' },
        headers: { 'idempotency-key': key2 },
      });
      const admin = new pg.Client({ connectionString: cluster.db.url });
      await admin.connect();
      const marker = await admin.query(
        "UPDATE idempotency_keys SET status = 0 WHERE idem_key = $1 AND scope = 'idem-user' RETURNING body",
        [key2],
      );
      await admin.end();
      expect(JSON.parse(marker.rows[0].body)).toEqual(made.body);
      const retried = await b.call('POST', '/v1/groups', {
        token: u,
        body: { groupId: 'idem-m' },
        headers: { 'idempotency-key': key2 },
      });
      expect(retried.status).toBe(201);
      expect(retried.body).toEqual(made.body);
      const bad = await a.call<{ error: { code: string } }>('POST', '/v1/groups', {
        token: u,
        body: { groupId: 'idem-h' },
        headers: { 'idempotency-key': 'spaces are not allowed' },
      });
      expect(bad.body.error.code).toBe('BAD_REQUEST');
    });

    // A peer that gave up on a slow answer (its session to that tracker timed out) sends the
    // write again, to another tracker, while the first is still served: the retry waits on the
    // first's locks and finds nothing left to do. It gets the first's answer, not REQUEST_NOT_FOUND
    // (the chaos test's setup failed so at load 26). And a retry that finds only the marker of a
    // committed, unanswered accept gets the accept's answer too.
    it("answers an accept's retry, sent while the first is served or after it went unanswered, as the first", async () => {
      const a = client(trackers[0]!.url);
      const b = client(trackers[1]!.url);
      const owner = await a.user('rq-owner');
      await a.call('POST', '/v1/groups', { token: owner, body: { groupId: 'rq-g' } });
      const users = Array.from({ length: 16 }, (_, i) => `rq-u${i}`);
      for (const u of users) await b.call('POST', '/v1/groups/rq-g/join', { token: await b.user(u) });
      const answers = await Promise.all(
        users.map((u, i) => {
          const path = `/v1/groups/rq-g/requests/${u}/accept`;
          const headers = { 'idempotency-key': `rq-accept-${i}` };
          return Promise.all([
            a.call('POST', path, { token: owner, headers }),
            b.call('POST', path, { token: owner, headers }),
          ]);
        }),
      );
      for (const [first, again] of answers) {
        expect([first.status, again.status], JSON.stringify([first.body, again.body])).toEqual([200, 200]);
        expect(again.body).toEqual(first.body);
      }
      const members = await a.call<{ members: { userId: string }[] }>('GET', '/v1/groups/rq-g/members', {
        token: owner,
      });
      expect(members.body.members.map((m) => m.userId).sort()).toEqual(['rq-owner', ...users].sort());

      await b.call('POST', '/v1/groups/rq-g/join', { token: await b.user('rq-late') });
      const key = { 'idempotency-key': 'rq-accept-late' };
      const made = await a.call('POST', '/v1/groups/rq-g/requests/rq-late/accept', {
        token: owner,
        headers: key,
      });
      const admin = new pg.Client({ connectionString: cluster.db.url });
      await admin.connect();
      await admin.query("UPDATE idempotency_keys SET status = 0 WHERE idem_key = 'rq-accept-late'");
      await admin.end();
      const retried = await b.call('POST', '/v1/groups/rq-g/requests/rq-late/accept', {
        token: owner,
        headers: key,
      });
      expect([made.status, retried.status]).toEqual([200, 200]);
      expect(retried.body).toEqual(made.body);
    });

    it('counts failed logins across the cluster: cycling trackers does not buy more guesses', async () => {
      await client(trackers[0]!.url).user('guess-target');
      // The default limit is 5 failures per user per minute: spread over the three trackers.
      const tries: number[] = [];
      for (let i = 0; i < 6; i++) {
        const t = client(trackers[i % 3]!.url);
        const r = await t.call('POST', '/v1/login', {
          body: { userId: 'guess-target', password: 'wrong-wrong' },
        });
        tries.push(r.status);
      }
      expect(tries.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
      expect(tries[5]).toBe(429);
      for (const t of trackers) {
        const r = await client(t.url).call<{ error: { code: string } }>('POST', '/v1/login', {
          body: { userId: 'guess-target', password: 'correct horse battery' },
        });
        expect(r.status).toBe(429);
        expect(r.body.error.code).toBe('RATE_LIMITED');
      }
    });

    it('drops a killed tracker from the cluster and pushes the change; its seeders go after the grace', async () => {
      const a = client(trackers[0]!.url);
      const owner = await a.user('k-owner');
      await a.call('POST', '/v1/groups', { token: owner, body: { groupId: 'kg' } });
      const f = fakeManifest('killed');
      const peer = randomPeerId();
      await a.call('POST', '/v1/groups/kg/files', {
        token: owner,
        body: { name: 'k.bin', manifest: f.manifest, peerId: peer },
      });
      const watcher = await openSession(trackers[0]!.url, owner);
      await greet(watcher);
      await watcher.next('cluster');
      watcher.raw({ type: 'watch', id: 1, files: [f.fileId] });
      await watcher.next('ack');
      const seeder = await openSession(trackers[2]!.url, owner, { autoPong: false });
      await greet(seeder, { peerId: peer, addresses: ['127.0.0.1:9'], seeding: [f.fileId] });
      await watcher.next('seeder_appeared');

      const killedAt = Date.now();
      await trackers[2]!.stop('SIGKILL');
      const pushed = (await watcher.next('cluster', 10_000)) as unknown as ClusterList;
      expect(pushed.trackers.map((t) => t.url).sort()).toEqual([trackers[0]!.url, trackers[1]!.url].sort());
      // Still listed during the grace period (its peer may be reconnecting elsewhere)…
      const during = await a.call<{ seeders: unknown[] }>('GET', `/v1/groups/kg/files/${f.fileId}/seeders`, {
        token: owner,
      });
      if (Date.now() - killedAt < 2_000) expect(during.body.seeders).toHaveLength(1);
      // …then reaped, and the watchers hear it.
      expect(await watcher.next('seeder_left', 10_000)).toMatchObject({ fileId: f.fileId, peerId: peer });
      await seeder.close();
      await watcher.close();
      await cluster.startTracker(2);
    });
  },
);

describeWithPg(
  'a peer whose tracker is killed',
  { prefix: 'coterie-failover-', trackers: 3, flags: CLUSTER_FLAGS },
  (cluster) => {
    const { root, trackers } = cluster;
    const swarm = cliSwarm<'peer'>('coterie-failover-peer-');
    const cli = (args: string[]) => swarm.as('peer', '--json', ...args);

    it('moves to another tracker and the next command works without the user doing anything', async () => {
      // Given one tracker URL only: it learns the others from the cluster.
      swarm.useTracker(trackers[0]!.url);
      await swarm.startPeer('peer', ['--tracker-heartbeat-ms', '1000']);
      expect((await cli(['create_user', 'fo-user', 'fo-password'])).code).toBe(0);
      expect((await cli(['login', 'fo-user', 'fo-password'])).code).toBe(0);
      expect((await cli(['create_group', 'fo-group'])).code).toBe(0);
      const status = async () =>
        JSON.parse((await cli(['status'])).out) as { tracker: string | null; trackers: string[] };
      await until('connected', async () => (await status()).tracker !== null);
      const before = (await status()).tracker!;
      const victim = trackers.find((t) => t.url === before)!;
      await victim.stop('SIGKILL');

      // The very next command works (retried on a live tracker if need be).
      const groups = await cli(['list_groups']);
      expect(groups.code).toBe(0);
      expect(JSON.parse(groups.out)).toMatchObject({ groups: [{ groupId: 'fo-group' }] });
      await until('reconnected elsewhere', async () => {
        const s = await status();
        return s.tracker !== null && s.tracker !== before;
      });
      // Same session: still logged in, no new login.
      expect((await cli(['create_group', 'fo-group-2'])).code).toBe(0);
    });

    it('keeps the shell working: the command typed after the kill answers, no error, no new login', async () => {
      const live = trackers.filter((t) => t.proc.exitCode === null && t.proc.signalCode === null);
      expect(live.length).toBeGreaterThanOrEqual(2);
      const daemon = await startPeerDaemon({
        dataDir: join(root, 'shell-peer'),
        trackers: live.map((t) => t.url),
        pool: { backoffMs: [0, 50, 100, 200], jitter: 0 },
        heartbeatIntervalMs: 500,
        heartbeatTimeoutMs: 500,
      });
      const shell = pipedShell(daemon);
      try {
        shell.input.write(
          'create_user sh-user sh-password\nlogin sh-user sh-password\ncreate_group sh-group\n',
        );
        await until('logged in with a group', () => shell.text.includes("'sh-group'"));
        const status = async () => (await daemon.execute('status', [])) as { tracker: string | null };
        await until('connected', async () => (await status()).tracker !== null);
        const before = (await status()).tracker!;
        await live.find((t) => t.url === before)!.stop('SIGKILL');
        const shown = shell.text.length;
        shell.input.write('list_groups\ncreate_group sh-group-2\n');
        await until('both commands answered', () => shell.text.slice(shown).includes("'sh-group-2'"));
        const after = shell.text.slice(shown);
        // The listing (the session survived: still logged in) and the new group, no error between.
        expect(after).toMatch(/sh-group +sh-user/);
        expect(after).toContain("created group 'sh-group-2'");
        expect(after).not.toContain('error:');
        await until('reconnected elsewhere', async () => {
          const s = await status();
          return s.tracker !== null && s.tracker !== before;
        });
      } finally {
        shell.input.end();
        await shell.done;
        await daemon.stop();
      }
    });
  },
);
