// The file GC (services/file-gc.ts) on a real store, as one suite run on SQLite
// (test/integration/tracker-gc.test.ts) and PostgreSQL (test/cluster/gc.test.ts; one dialect per
// file: the share path's prepared queries are compiled once per process, for the first store
// opened), through the tracker's own services with an injected clock:
// versions dropped by retention and deleted names lose their rows and pages after the grace while
// the live ones stay whole; a page two files share outlives one of them; pages no file refers to go
// after their own grace; a replica row holds a file back; a sweep that dies between batches leaves a
// consistent store.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { ShareRequest } from '../../src/protocol/api.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import {
  assembleManifest,
  type ManifestPage,
  type ManifestRoot,
  pagesOf,
} from '../../src/protocol/manifest-pages.js';
import { createLocalEventBus } from '../../src/tracker/events/index.js';
import type { ServiceDeps } from '../../src/tracker/services/context.js';
import { createFileGc, type FileGc, type SweepCounts } from '../../src/tracker/services/file-gc.js';
import { createFileVersionsService } from '../../src/tracker/services/file-versions.js';
import { createFilesService } from '../../src/tracker/services/files.js';
import { createGroupsService } from '../../src/tracker/services/groups.js';
import { createManifestPagesService } from '../../src/tracker/services/manifest-pages.js';
import { createPresenceService } from '../../src/tracker/services/presence.js';
import { createRevocationsService } from '../../src/tracker/services/revocations.js';
import { createStorageService } from '../../src/tracker/services/storage.js';
import { openStore, type Store } from '../../src/tracker/store/index.js';
import { pageHashesOf } from '../../src/tracker/store/migrations-pages.js';
import { nestedTree } from './manifest-pages-suite.js';
import { fakeManifest, randomPeerId } from './tracker.js';

const GRACE_MS = 60_000;
const ORPHAN_GRACE_MS = 120_000;
const T0 = 1_000_000_000;

const opened: { store: Store; gc: FileGc }[] = [];
afterEach(async () => {
  for (const w of opened.splice(0)) {
    await w.gc.stop();
    await w.store.close();
  }
});

async function openWorld(location: string, gcOptions: { batchRows?: number } = {}) {
  const store = await openStore({ location });
  const clock = { t: T0 };
  const bus = createLocalEventBus();
  const deps: ServiceDeps = { store, bus, now: () => clock.t };
  const cache = { readCacheMs: 0, readCacheEntries: 0 };
  const policy = { scoreHalfLifeMs: 3_600_000, corruptFlagThreshold: 3 };
  const revocations = createRevocationsService()(deps);
  const groups = createGroupsService(cache)({ ...deps, revocations });
  const presence = createPresenceService('tracker-1')(deps);
  const files = createFilesService(policy, cache)({ ...deps, groups, presence });
  const versions = createFileVersionsService()({ ...deps, groups, presence });
  const pages = createManifestPagesService()({ ...deps, groups });
  const storage = createStorageService({ storageGraceMs: 1000 })({ ...deps, groups });
  const hooks: { betweenBatches?: () => void } = {};
  const gc = createFileGc({
    trackerId: 'tracker-1',
    graceMs: GRACE_MS,
    orphanGraceMs: ORPHAN_GRACE_MS,
    intervalMs: 3_600_000, // runs come from the test
    logger: pino({ level: 'silent' }),
    betweenBatches: () => hooks.betweenBatches?.(),
    ...gcOptions,
  })(deps);
  opened.push({ store, gc });
  for (const u of ['ann', 'ben']) {
    await store.db.insertInto('users').values({ user_id: u, password_hash: 'x', created_at: T0 }).execute();
  }
  await groups.create('ann', 'g');
  await store.db.insertInto('memberships').values({ group_id: 'g', user_id: 'ben', joined_at: T0 }).execute();

  /** Uploads the tree's pages and shares its root as `name` (or updates `name` to it). */
  async function shareTree(m: Manifest, name: string, update = false): Promise<string> {
    const { root, pages: paged } = pagesOf(m);
    for (const p of paged) await pages.put('ann', 'g', p.page);
    const request = { manifest: root, peerId: randomPeerId() };
    return update
      ? (await versions.update('ann', 'g', name, request)).fileId
      : (await files.share('ann', 'g', { ...request, name })).fileId;
  }

  /** The tracker's side of a download: the listed root, then each of its pages, put together. */
  async function fetchTree(fileId: string): Promise<Manifest> {
    const detail = await files.get('ben', 'g', fileId);
    const root = detail.manifest as ManifestRoot;
    const got = new Map<string, ManifestPage>();
    for (const h of [...root.filePages, ...root.piecePages]) {
      got.set(h, JSON.parse(await pages.getJson('ben', 'g', h)) as ManifestPage);
    }
    return assembleManifest(root, (h) => got.get(h));
  }

  async function sweep(): Promise<SweepCounts> {
    const c = await gc.runNow();
    if (c === undefined) throw new Error('the sweep failed or did not hold the lease');
    return c;
  }

  const fileIds = async () =>
    (await store.db.selectFrom('files').select('file_id').execute()).map((r) => r.file_id).sort();
  const pageSet = async () =>
    new Set((await store.db.selectFrom('manifest_pages').select('hash').execute()).map((r) => r.hash));

  /** Every file's pages are there and referenced; every reference names a file and a page (the store is whole). */
  async function expectConsistent(): Promise<void> {
    const have = await pageSet();
    const refs = await store.db.selectFrom('manifest_page_refs').select(['file_id', 'hash']).execute();
    const refKeys = new Set(refs.map((r) => `${r.file_id}:${r.hash}`));
    const rows = await store.db.selectFrom('files').select(['file_id', 'manifest']).execute();
    const ids = new Set(rows.map((r) => r.file_id));
    for (const r of rows) {
      for (const h of pageHashesOf(r.manifest)) {
        expect(have.has(h), `page ${h.slice(0, 8)} of ${r.file_id.slice(0, 8)}`).toBe(true);
        expect(refKeys.has(`${r.file_id}:${h}`)).toBe(true);
      }
    }
    for (const r of refs) expect(ids.has(r.file_id) && have.has(r.hash)).toBe(true);
  }

  return {
    deps,
    store,
    clock,
    files,
    versions,
    pages,
    storage,
    gc,
    hooks,
    shareTree,
    fetchTree,
    sweep,
    fileIds,
    pageSet,
    expectConsistent,
  };
}

const hashesOf = (m: Manifest) => pagesOf(m).pages.map((p) => p.hash);

export function gcSuite(name: string, location: () => Promise<string>) {
  describe(`file GC on ${name}`, { timeout: 60_000 }, () => {
    it('removes dropped versions and deleted names with their pages after the grace; the live ones stay whole', async () => {
      const w = await openWorld(await location());
      await w.versions.keepVersions('ann', 'g', 2);
      const trees = ['a', 'b', 'c'].map((salt) => nestedTree(3000, salt));
      const v1 = await w.shareTree(trees[0]!, 'tree');
      const v2 = await w.shareTree(trees[1]!, 'tree', true);
      const v3 = await w.shareTree(trees[2]!, 'tree', true); // v1 leaves the listing (keep 2)
      const solo = fakeManifest('solo');
      await w.files.share('ann', 'g', {
        name: 'solo',
        manifest: solo.manifest as ShareRequest['manifest'],
        peerId: randomPeerId(),
      });
      await w.versions.remove('ann', 'g', 'solo');

      // Within the grace nothing goes: a download holding a ticket may still read v1's pages.
      expect((await w.sweep()).marked).toBe(2);
      w.clock.t += GRACE_MS - 1;
      expect(await w.sweep()).toMatchObject({ marked: 0, files: 0, pages: 0, orphans: 0, waiting: 2 });
      expect(await w.fetchTree(v2)).toEqual(trees[1]);

      w.clock.t += ORPHAN_GRACE_MS; // past both graces
      const c = await w.sweep();
      expect(c).toMatchObject({ files: 2, orphans: 0, waiting: 0 });
      expect(await w.fileIds()).toEqual([v2, v3].sort());
      const have = await w.pageSet();
      // The trees have the same paths: their file pages are shared and stay; v1's piece pages go.
      const v1Only = hashesOf(trees[0]!).filter(
        (h) => !hashesOf(trees[1]!).includes(h) && !hashesOf(trees[2]!).includes(h),
      );
      expect(v1Only.length).toBeGreaterThan(0);
      expect(c.pages).toBe(v1Only.length);
      for (const h of v1Only) expect(have.has(h)).toBe(false);
      for (const h of [...hashesOf(trees[1]!), ...hashesOf(trees[2]!)]) expect(have.has(h)).toBe(true);
      expect(await w.fetchTree(v2)).toEqual(trees[1]);
      expect(await w.fetchTree(v3)).toEqual(trees[2]);
      await w.expectConsistent();
      // The same content shared again comes back whole (its pages uploaded again).
      expect(await w.shareTree(trees[0]!, 'tree-again')).toBe(v1);
      expect(await w.fetchTree(v1)).toEqual(trees[0]);
    });

    it('keeps a page two files share when one of them is deleted', async () => {
      const w = await openWorld(await location());
      const x = nestedTree(2000, 'x');
      const y = nestedTree(2000, 'y');
      await w.shareTree(x, 'x');
      const yId = await w.shareTree(y, 'y');
      const shared = hashesOf(x).filter((h) => hashesOf(y).includes(h));
      expect(shared.length).toBeGreaterThan(0);
      await w.versions.remove('ann', 'g', 'x');
      await w.sweep();
      w.clock.t += GRACE_MS + 1;
      const c = await w.sweep();
      expect(c.files).toBe(1);
      expect(c.pages).toBe(hashesOf(x).length - shared.length);
      const have = await w.pageSet();
      for (const h of shared) expect(have.has(h)).toBe(true);
      expect(await w.fetchTree(yId)).toEqual(y);
      await w.expectConsistent();
    });

    it('starts a file’s grace again when it is listed again', async () => {
      const w = await openWorld(await location());
      const t = nestedTree(500, 't');
      const id = await w.shareTree(t, 't');
      await w.versions.remove('ann', 'g', 't');
      await w.sweep(); // marked
      w.clock.t += GRACE_MS - 10;
      await w.shareTree(t, 't'); // listed again: the mark is gone…
      await w.versions.remove('ann', 'g', 't'); // …and unlisted again before any sweep saw it listed
      w.clock.t += 20;
      // Its grace runs from the sweep that finds it unlisted now, not from the first mark.
      expect(await w.sweep()).toMatchObject({ marked: 1, files: 0 });
      expect(await w.fileIds()).toEqual([id]);
      w.clock.t += GRACE_MS - 10;
      expect((await w.sweep()).files).toBe(0);
      w.clock.t += 20;
      expect((await w.sweep()).files).toBe(1);
      await w.expectConsistent();
    });

    it('removes pages no file refers to after their grace, counted from their last upload', async () => {
      const w = await openWorld(await location());
      const [old, young, again] = ['o', 'y', 'a'].map((s) => pagesOf(nestedTree(50, s)).pages.at(-1)!);
      await w.pages.put('ann', 'g', old!.page);
      await w.pages.put('ann', 'g', again!.page);
      w.clock.t += ORPHAN_GRACE_MS - 1000;
      await w.pages.put('ann', 'g', young!.page);
      await w.pages.put('ann', 'g', again!.page); // an upload under way sends it again: young again
      w.clock.t += 2000;
      expect((await w.sweep()).orphans).toBe(1);
      const have = await w.pageSet();
      expect([have.has(old!.hash), have.has(young!.hash), have.has(again!.hash)]).toEqual([
        false,
        true,
        true,
      ]);
      w.clock.t += ORPHAN_GRACE_MS;
      expect((await w.sweep()).orphans).toBe(2);
      expect((await w.pageSet()).size).toBe(0);
    });

    it('keeps a file while a replica row names it, and tells a storage peer to drop a file it no longer knows', async () => {
      const w = await openWorld(await location());
      const f = fakeManifest('replicated');
      await w.files.share('ann', 'g', {
        name: 'r',
        manifest: f.manifest as ShareRequest['manifest'],
        peerId: randomPeerId(),
      });
      await w.versions.remove('ann', 'g', 'r');
      const peerId = randomPeerId();
      await w.store.db
        .insertInto('storage_offers')
        .values({
          group_id: 'g',
          peer_id: peerId,
          user_id: 'ben',
          quota_bytes: 1e9,
          zone: '',
          offered_at: T0,
          withdrawing: 0,
          last_seen: T0,
        })
        .execute();
      await w.store.db
        .insertInto('replicas')
        .values({ group_id: 'g', file_id: f.fileId, peer_id: peerId, state: 'held', updated_at: T0 })
        .execute();
      await w.sweep();
      w.clock.t += GRACE_MS + 1;
      // The planner has not dropped it yet (a peer away): the row that would carry its drop stays.
      expect(await w.sweep()).toMatchObject({ files: 0, waiting: 1 });
      await w.store.db.deleteFrom('replicas').execute(); // the planner's drop
      expect((await w.sweep()).files).toBe(1);
      // The drop was lost (the peer was away); back, it reports the copy: it is told to drop it.
      const info = { sessionId: 's', userId: 'ben', peerId, addresses: [] };
      const out = await w.storage.report(info, [{ groupId: 'g', held: [f.fileId] }]);
      expect(out).toEqual([
        expect.objectContaining({ type: 'drop', groupId: 'g', fileId: f.fileId, reason: 'unlisted' }),
      ]);
    });

    it('sweeps on one tracker at a time: another takes over only once the lease has expired', async () => {
      const w = await openWorld(await location());
      const other = createFileGc({
        trackerId: 'tracker-2',
        graceMs: GRACE_MS,
        orphanGraceMs: ORPHAN_GRACE_MS,
        intervalMs: 3_600_000,
        logger: pino({ level: 'silent' }),
      })(w.deps);
      try {
        await w.sweep(); // tracker-1 holds the lease (3 intervals)
        expect(await other.runNow()).toBeUndefined();
        w.clock.t += 3 * 3_600_000 - 1;
        expect(await other.runNow()).toBeUndefined();
        w.clock.t += 2; // tracker-1 ran no more: its lease is over
        expect(await other.runNow()).toBeDefined();
        expect(await w.gc.runNow()).toBeUndefined();
      } finally {
        await other.stop();
      }
    });

    it('leaves a consistent store when a sweep dies between batches, and the next run finishes it', async () => {
      const w = await openWorld(await location(), { batchRows: 2 });
      const trees = Array.from({ length: 5 }, (_, i) => nestedTree(400, `d${i}`));
      for (const [i, t] of trees.entries()) await w.shareTree(t, `d${i}`);
      const live = nestedTree(400, 'live');
      const liveId = await w.shareTree(live, 'live');
      for (let i = 0; i < trees.length; i++) await w.versions.remove('ann', 'g', `d${i}`);
      await w.sweep();
      w.clock.t += GRACE_MS + 1;
      let batches = 0;
      w.hooks.betweenBatches = () => {
        batches += 1;
        if (batches === 2) throw new Error('the tracker died');
      };
      expect(await w.gc.runNow()).toBeUndefined(); // failed mid-sweep
      const left = await w.fileIds();
      expect(left.length).toBeGreaterThan(1); // some batches applied, not all
      expect(left.length).toBeLessThan(6);
      await w.expectConsistent();
      expect(await w.fetchTree(liveId)).toEqual(live);
      w.hooks.betweenBatches = undefined;
      await w.sweep();
      expect(await w.fileIds()).toEqual([liveId]);
      await w.expectConsistent();
      expect(await w.fetchTree(liveId)).toEqual(live);
    });
  });
}
