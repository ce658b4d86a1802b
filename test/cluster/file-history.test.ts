// Issue 16's guarantee, checked on a history: several users update (with and without ifVersion),
// delete, lock and unlock one file name at once, each call through either of two trackers on one
// PostgreSQL. Rounds of concurrent calls; between rounds the store's state is read back. Checked:
// every acknowledged update is a distinct version and they follow the round's starting version
// without gaps; an acknowledged compare-and-set landed on the version it named; the versions
// listed afterwards are exactly the acknowledged ones; and while a lock held at a round's start is
// not released in that round, no update or delete by anyone else lands.
import fc from 'fast-check';
import pg from 'pg';
import { beforeAll, expect, it } from 'vitest';
import { client, fakeManifest, openSession, randomPeerId, type TrackerClient } from '../helpers/tracker.js';
import { until } from '../helpers/wait.js';
import { describeWithPg, FAST_MEMBERSHIP_FLAGS } from './pg.js';

const USERS = ['fh-owner', 'fh-ann', 'fh-ben'] as const;
type User = (typeof USERS)[number];

type Op =
  | { kind: 'update'; user: number; via: number; cas: 'current' | 'stale' | 'none' }
  | { kind: 'delete'; user: number; via: number }
  | { kind: 'lock'; user: number; via: number }
  | { kind: 'unlock'; user: number; via: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      user: fc.nat(2),
      via: fc.nat(1),
      cas: fc.constantFrom('current' as const, 'stale' as const, 'none' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), user: fc.nat(2), via: fc.nat(1) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('lock' as const), user: fc.nat(2), via: fc.nat(1) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('unlock' as const), user: fc.nat(2), via: fc.nat(1) }),
  },
);
const historyArb = fc.array(fc.array(opArb, { minLength: 2, maxLength: 5 }), { minLength: 3, maxLength: 6 });

interface Outcome {
  op: Op;
  status: number;
  body: Record<string, unknown> & { error?: { code: string } };
}
interface NameState {
  current: number;
  versions: { version: number; fileId: string }[];
  holder: string | undefined;
}

describeWithPg(
  'file versions, deletes and locks across two trackers',
  { prefix: 'coterie-file-history-', timeout: 60_000, flags: FAST_MEMBERSHIP_FLAGS },
  (cluster) => {
    const { trackers } = cluster;
    let apis: TrackerClient[] = [];
    const tokens = new Map<User, string>();
    const group = 'fh';
    let seq = 0;

    beforeAll(async () => {
      apis = trackers.map((t) => client(t.url));
      for (const [i, u] of USERS.entries()) tokens.set(u, await apis[i % 2]!.user(u));
      const owner = tokens.get('fh-owner')!;
      await apis[0]!.call('POST', '/v1/groups', { token: owner, body: { groupId: group } });
      for (const u of USERS.slice(1)) {
        await apis[1]!.call('POST', `/v1/groups/${group}/join`, { token: tokens.get(u)! });
        await apis[0]!.call('POST', `/v1/groups/${group}/requests/${u}/accept`, { token: owner });
      }
      // Keep every version: the check compares the listing with every acknowledged update.
      await apis[0]!.call('POST', `/v1/groups/${group}/versions`, { token: owner, body: { keep: 1000 } });
    }, 60_000);

    const files = (name: string) => `/v1/groups/${group}/files/${encodeURIComponent(name)}`;

    async function state(name: string): Promise<NameState | undefined> {
      const r = await apis[0]!.call<{
        currentVersion: number;
        versions: { version: number; fileId: string }[];
        lock?: { holder: string };
      }>('GET', `${files(name)}/versions`, { token: tokens.get('fh-owner')! });
      if (r.status === 404) return undefined;
      expect(r.status, r.text).toBe(200);
      return { current: r.body.currentVersion, versions: r.body.versions, holder: r.body.lock?.holder };
    }

    async function run(op: Op, name: string, current: number): Promise<Outcome> {
      const user = USERS[op.user]!;
      const token = tokens.get(user)!;
      const api = apis[op.via]!;
      let r: { status: number; body: Outcome['body'] };
      if (op.kind === 'update') {
        const ifVersion =
          op.cas === 'current' ? current : op.cas === 'stale' ? Math.max(1, current - 1) : undefined;
        r = await api.call('POST', `${files(name)}/versions`, {
          token,
          body: {
            manifest: fakeManifest(`fh-${seq++}`).manifest,
            peerId: randomPeerId(),
            ...(ifVersion === undefined ? {} : { ifVersion }),
          },
        });
        if (r.status === 201) expect(ifVersion === undefined || r.body.version === ifVersion + 1).toBe(true);
      } else if (op.kind === 'lock') {
        r = await api.call('POST', `${files(name)}/lock`, { token, body: { ttlSeconds: 60 } });
      } else {
        r = await api.call('POST', `${files(name)}/${op.kind}`, { token });
      }
      return { op, status: r.status, body: r.body };
    }

    it('keeps every acknowledged update as a distinct version, without gaps, and honours locks', async () => {
      let runNo = 0;
      const started = Date.now();
      await fc.assert(
        fc.asyncProperty(historyArb, async (rounds) => {
          const name = `h${runNo++}.txt`;
          for (const ops of rounds) {
            let before = await state(name);
            if (before === undefined) {
              const share = await apis[0]!.call('POST', `/v1/groups/${group}/files`, {
                token: tokens.get('fh-owner')!,
                body: { name, manifest: fakeManifest(`fh-${seq++}`).manifest, peerId: randomPeerId() },
              });
              expect(share.status, share.text).toBe(201);
              before = (await state(name))!;
            }
            const start = before;
            const outcomes = await Promise.all(ops.map((op) => run(op, name, start.current)));
            for (const o of outcomes)
              expect([200, 201, 403, 404, 409, 423], JSON.stringify(o)).toContain(o.status);
            const updates = outcomes.filter((o) => o.op.kind === 'update' && o.status === 201);
            const deleted = outcomes.filter((o) => o.op.kind === 'delete' && o.status === 200);
            // Distinct versions following the round's start, without gaps.
            const versions = updates.map((o) => o.body.version as number).sort((a, b) => a - b);
            expect(versions).toEqual(versions.map((_, i) => start.current + 1 + i));
            expect(new Set(updates.map((o) => o.body.fileId)).size).toBe(updates.length);
            expect(deleted.length).toBeLessThanOrEqual(1);
            const after = await state(name);
            if (deleted.length === 0) {
              // Nothing acknowledged is lost, and nothing unacknowledged appears.
              expect(after?.current).toBe(start.current + updates.length);
              const listed = new Map(after!.versions.map((v) => [v.version, v.fileId]));
              for (const u of updates) expect(listed.get(u.body.version as number)).toBe(u.body.fileId);
              expect(after!.versions).toHaveLength(start.versions.length + updates.length);
            } else {
              expect(after).toBeUndefined();
            }
            // A lock held at the start and not released in the round keeps everyone else out.
            const released = outcomes.some((o) => o.op.kind === 'unlock' && o.body.released === true);
            if (start.holder !== undefined && !released) {
              const landed = outcomes.filter(
                (o) =>
                  (o.op.kind === 'update' || o.op.kind === 'delete') &&
                  o.status < 300 &&
                  USERS[o.op.user] !== start.holder,
              );
              expect(landed, `lock of ${start.holder}`).toEqual([]);
            }
          }
        }),
        { numRuns: 12 },
      );
      // The bound the brief sets: well under a minute.
      expect(Date.now() - started).toBeLessThan(45_000);
    });

    it('pushes a deletion to sessions on the other tracker, and ends a lock when its holder’s tracker dies', async () => {
      const [a, b] = apis as [TrackerClient, TrackerClient];
      const owner = tokens.get('fh-owner')!;
      const ann = tokens.get('fh-ann')!;
      const ben = tokens.get('fh-ben')!;
      const share = (name: string) =>
        a.call('POST', `/v1/groups/${group}/files`, {
          token: owner,
          body: { name, manifest: fakeManifest(`x-${seq++}`).manifest, peerId: randomPeerId() },
        });
      await share('gone.txt');
      const seeder = await openSession(trackers[1]!.url, ben);
      seeder.raw({ type: 'hello', v: 1, peerId: randomPeerId(), addresses: [], seeding: [] });
      await seeder.next('welcome');
      expect((await a.call('POST', `${files('gone.txt')}/delete`, { token: owner })).status).toBe(200);
      // Past the replay, at hello, of the deletions the first test made.
      let pushed = await seeder.next('file_deleted');
      while ((pushed as { name?: string }).name !== 'gone.txt') pushed = await seeder.next('file_deleted');
      expect(pushed).toMatchObject({ groupId: group, name: 'gone.txt' });
      await seeder.close();

      // ann's peer holds a lock through a third tracker, which is then killed.
      await share('held.txt');
      const c = await cluster.startTracker(2);
      try {
        const holder = await openSession(c.url, ann);
        const peerId = randomPeerId();
        holder.raw({ type: 'hello', v: 1, peerId, addresses: [], seeding: [] });
        await holder.next('welcome');
        const lock = await client(c.url).call('POST', `${files('held.txt')}/lock`, {
          token: ann,
          body: { peerId },
        });
        expect(lock.status, lock.text).toBe(200);
        const update = () =>
          b.call<{ error?: { code: string } }>('POST', `${files('held.txt')}/versions`, {
            token: ben,
            body: { manifest: fakeManifest(`x-${seq++}`).manifest, peerId: randomPeerId() },
          });
        expect((await update()).body.error?.code).toBe('FILE_LOCKED');
        await c.stop('SIGKILL');
        const killedAt = Date.now();
        // Honoured by the live trackers until they reap the dead one's sessions, then gone.
        expect((await update()).body.error?.code).toBe('FILE_LOCKED');
        await until('the update to land', async () => (await update()).status === 201, 10_000);
        // Dead after 1 s, reaped after a 1.5 s grace, at a 200 ms beat.
        expect(Date.now() - killedAt).toBeLessThan(6_000);
      } finally {
        await c.stop('SIGKILL');
      }
    });

    it('answers a retried compare-and-set whose answer was lost with its tracker as the first time', async () => {
      const [a, b] = apis as [TrackerClient, TrackerClient];
      const owner = tokens.get('fh-owner')!;
      await a.call('POST', `/v1/groups/${group}/files`, {
        token: owner,
        body: { name: 'retried.txt', manifest: fakeManifest(`r-${seq++}`).manifest, peerId: randomPeerId() },
      });
      const key = 'k-update-committed-unanswered';
      const body = { manifest: fakeManifest(`r-${seq++}`).manifest, peerId: randomPeerId(), ifVersion: 1 };
      const headers = { 'idempotency-key': key };
      const made = await a.call('POST', `${files('retried.txt')}/versions`, { token: owner, body, headers });
      expect(made.body).toMatchObject({ version: 2, created: true });
      // As if the tracker died after the commit, before recording the answer: only the marker is left.
      const admin = new pg.Client({ connectionString: cluster.db.url });
      await admin.connect();
      await admin.query('UPDATE idempotency_keys SET status = 0 WHERE idem_key = $1', [key]);
      await admin.end();
      // Run again, the compare-and-set is refused (version 2 is current); the retry gets the first answer.
      const retried = await b.call('POST', `${files('retried.txt')}/versions`, {
        token: owner,
        body,
        headers,
      });
      expect(retried.status).toBe(201);
      expect(retried.body).toEqual(made.body);
    });
  },
);
