// The storage planner on a real store (SQLite, and PostgreSQL when COTERIE_TEST_PG_URL is set), in
// process with an injected clock: it plans only the groups that changed (a bus event, a storage peer
// connecting, leaving or running out of its grace) plus a slow full sweep, and a storage peer that
// keeps failing to fetch a replica (a disk always full) is given it again only after a back-off that
// doubles up to a bound, even when it is the only candidate.
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { REPLICA_RETRY_MAX_MS, replicaRetryDelayMs } from '../../src/core/index.js';
import { createLocalEventBus, type StorageOrderItem } from '../../src/tracker/events/index.js';
import type { ServiceDeps } from '../../src/tracker/services/context.js';
import type { GroupsService } from '../../src/tracker/services/groups.js';
import { createStorageService } from '../../src/tracker/services/storage.js';
import { createStoragePlanner, type StoragePlanner } from '../../src/tracker/services/storage-planner.js';
import { openStore, type Store } from '../../src/tracker/store/index.js';
import { createTestDatabase, pgTestUrl, type TestDatabase } from '../cluster/pg.js';
import { tempDir } from '../helpers/temp-dir.js';
import { eventually } from '../helpers/wait.js';

const GRACE_MS = 1000;
const SWEEP_MS = 60_000;
const T0 = 1_000_000;

interface World {
  store: Store;
  deps: ServiceDeps;
  clock: { t: number };
  planner: StoragePlanner;
  planned: string[];
  orders: { peerId: string; item: StorageOrderItem }[];
  storage: ReturnType<ReturnType<typeof createStorageService>>;
}

const opened: World[] = [];
const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const w of opened.splice(0)) {
    await w.planner.stop();
    await w.store.close();
  }
});
afterAll(async () => {
  for (const d of databases) await d.drop();
});

async function openWorld(location: string): Promise<World> {
  const store = await openStore({ location });
  const clock = { t: T0 };
  const bus = createLocalEventBus();
  const deps: ServiceDeps = { store, bus, now: () => clock.t };
  const planned: string[] = [];
  const orders: World['orders'] = [];
  bus.subscribe((e) => {
    if (e.kind === 'storage_orders') for (const item of e.orders) orders.push({ peerId: e.peerId, item });
  });
  const planner = createStoragePlanner({
    trackerId: 'tracker-1',
    storageGraceMs: GRACE_MS,
    // Runs come from the test (and the bus's debounce), never from the timer.
    intervalMs: 3_600_000,
    fullSweepMs: SWEEP_MS,
    logger: pino({ level: 'silent' }),
    onGroupPlanned: (g) => planned.push(g),
  })(deps);
  // The report path reads no group state: membership is checked by the routes before it.
  const storage = createStorageService({ storageGraceMs: GRACE_MS })({
    ...deps,
    groups: {} as GroupsService,
  });
  const w = { store, deps, clock, planner, planned, orders, storage };
  opened.push(w);
  return w;
}

/** Users, a group with its files, storage peers (live ones with a session) and a policy, written straight to the store. */
async function seedGroup(
  w: World,
  groupId: string,
  o: { files: string[]; peers: { id: string; live: boolean }[]; min: number },
): Promise<void> {
  const db = w.store.db;
  const t = w.clock.t;
  const users = ['owner', ...o.peers.map((p) => `u-${p.id}`)];
  for (const u of users) {
    await db
      .insertInto('users')
      .values({ user_id: u, password_hash: 'x', created_at: t })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
  }
  await db
    .insertInto('groups')
    .values({ group_id: groupId, owner_id: 'owner', created_at: t, keep_versions: null })
    .execute();
  for (const u of users) {
    await db.insertInto('memberships').values({ group_id: groupId, user_id: u, joined_at: t }).execute();
  }
  for (const [i, fileId] of o.files.entries()) {
    await db
      .insertInto('files')
      .values({
        file_id: fileId,
        size: 1000 + i,
        piece_size: 1024,
        piece_count: 1,
        manifest: '{}',
        created_at: t,
      })
      .onConflict((oc) => oc.column('file_id').doNothing())
      .execute();
    await db
      .insertInto('group_files')
      .values({
        group_id: groupId,
        file_id: fileId,
        name: `n${i}`,
        version: 1,
        created_by: 'owner',
        created_at: t,
      })
      .execute();
    // Its sharer's share: the file stays listed whatever its replicas do.
    await db
      .insertInto('shares')
      .values({ group_id: groupId, file_id: fileId, peer_id: 'sharer', user_id: 'owner', created_at: t })
      .execute();
  }
  for (const p of o.peers) {
    await db
      .insertInto('storage_offers')
      .values({
        group_id: groupId,
        peer_id: p.id,
        user_id: `u-${p.id}`,
        quota_bytes: 1_000_000,
        zone: p.id,
        offered_at: t,
        withdrawing: 0,
        last_seen: t,
      })
      .execute();
    if (p.live) await connect(w, p.id);
  }
  await db
    .insertInto('replication_policies')
    .values({ group_id: groupId, min_replicas: o.min, max_replicas: o.min, updated_at: t })
    .execute();
}

async function connect(w: World, peerId: string): Promise<void> {
  await w.store.db
    .insertInto('presence')
    .values({
      peer_id: peerId,
      user_id: `u-${peerId}`,
      session_id: `s-${peerId}`,
      tracker_id: 'tracker-1',
      addresses: '[]',
      connected_at: w.clock.t,
    })
    .onConflict((oc) => oc.column('peer_id').doNothing())
    .execute();
}

/** Runs the planner (after any debounced run an event started) and returns the groups it planned. */
async function plan(w: World): Promise<string[]> {
  const from = w.planned.length;
  await new Promise((r) => setTimeout(r, 40)); // the bus debounce is 20 ms
  await w.planner.runNow();
  return [...new Set(w.planned.slice(from))].sort();
}

const replicates = (w: World, fileId: string) =>
  w.orders.filter((o) => o.item.t === 'r' && o.item.f === fileId).length;

function plannerSuite(name: string, location: () => Promise<string>) {
  describe(`storage planner on ${name}`, () => {
    it('plans only the groups that changed, promptly, and every group at the slow full sweep', async () => {
      const w = await openWorld(await location());
      const peers = [
        { id: 'pa', live: true },
        { id: 'pb', live: true },
      ];
      await seedGroup(w, 'ga', { files: ['fa1', 'fa2'], peers, min: 1 });
      await seedGroup(w, 'gb', { files: ['fb1'], peers: [{ id: 'pc', live: true }], min: 1 });
      w.planner.start();
      // The first run of a tracker that takes the lease plans everything.
      expect(await plan(w)).toEqual(['ga', 'gb']);
      expect(replicates(w, 'fa1') + replicates(w, 'fa2') + replicates(w, 'fb1')).toBe(3);

      // Nothing changed: nothing is planned, however often the planner runs.
      w.clock.t += 5_000;
      expect(await plan(w)).toEqual([]);
      w.clock.t += 5_000;
      expect(await plan(w)).toEqual([]);

      // A change in ga (a report, a policy, a file: storage_changed on the bus) plans ga alone, promptly.
      const before = w.planned.length;
      await w.deps.bus.publish({ kind: 'storage_changed', groupId: 'ga', at: w.clock.t });
      await eventually(async () => (w.planned.length > before ? true : undefined), 2_000);
      expect(w.planned.slice(before)).toEqual(['ga']);
      expect(await plan(w)).toEqual([]);

      // A storage peer's session ends with no event (its tracker died): its groups are planned at the
      // next run, again when its grace runs out, and not in between.
      await w.store.db.deleteFrom('presence').where('peer_id', '=', 'pc').execute();
      expect(await plan(w)).toEqual(['gb']);
      w.clock.t += GRACE_MS / 2;
      expect(await plan(w)).toEqual([]);
      w.clock.t += GRACE_MS;
      expect(await plan(w)).toEqual(['gb']);

      // The safety net: every group once a full sweep is due.
      w.clock.t += SWEEP_MS;
      expect(await plan(w)).toEqual(['ga', 'gb']);
      expect(await plan(w)).toEqual([]);
    });

    it('gives a replica back to a peer that failed to fetch it only after a back-off doubling to a bound', async () => {
      const w = await openWorld(await location());
      // One storage peer: the only candidate, its disk always full.
      await seedGroup(w, 'gf', { files: ['ff'], peers: [{ id: 'pf', live: true }], min: 1 });
      w.planner.start();
      await plan(w);
      expect(replicates(w, 'ff')).toBe(1);
      const info = { sessionId: 's-pf', userId: 'u-pf', peerId: 'pf', addresses: [] };

      const waits: number[] = [];
      for (let failures = 1; failures <= 11; failures++) {
        const sent = replicates(w, 'ff');
        // DISK_FULL: the peer reports the file missing at once.
        await w.storage.report(info, [{ groupId: 'gf', held: [], missing: ['ff'] }]);
        const failedAt = w.clock.t;
        const wait = replicaRetryDelayMs(failures);
        waits.push(wait);
        await plan(w);
        // A millisecond before its back-off ends, nothing; at its end, the order again.
        w.clock.t = failedAt + wait - 1;
        await plan(w);
        expect(replicates(w, 'ff')).toBe(sent);
        w.clock.t = failedAt + wait;
        await plan(w);
        expect(replicates(w, 'ff')).toBe(sent + 1);
      }
      expect(waits.slice(0, 4)).toEqual([1000, 2000, 4000, 8000]);
      expect(Math.max(...waits)).toBe(REPLICA_RETRY_MAX_MS);
      expect(waits.at(-1)).toBe(REPLICA_RETRY_MAX_MS);

      // Fetched at last: the back-off is forgotten, and the file is at min.
      await w.storage.report(info, [{ groupId: 'gf', held: ['ff'] }]);
      const rows = await w.store.db.selectFrom('replica_backoffs').selectAll().execute();
      expect(rows).toEqual([]);
      const held = await w.store.db
        .selectFrom('replicas')
        .select('state')
        .where('file_id', '=', 'ff')
        .execute();
      expect(held).toEqual([{ state: 'held' }]);
    });
  });
}

plannerSuite('SQLite', async () => join(tempDir('coterie-planner-').path, 'tracker.db'));
if (pgTestUrl() !== undefined) {
  plannerSuite('PostgreSQL', async () => {
    const d = await createTestDatabase();
    databases.push(d);
    return d.url;
  });
}
