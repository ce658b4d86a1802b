// Migration 0020 (page references) on a store made by the migrations before it, as one case run on
// SQLite (test/unit/tracker-store.test.ts) and PostgreSQL (test/cluster/gc.test.ts): the pages of
// the files already there get their references, so the GC's sweep of pages no file refers to keeps
// those of live files, while a dead file (listed nowhere) goes with the pages only it used.
import { type Kysely, Migrator } from 'kysely';
import { pino } from 'pino';
import { expect } from 'vitest';
import { pagesOf, rootFileId } from '../../src/protocol/manifest-pages.js';
import { createLocalEventBus } from '../../src/tracker/events/index.js';
import { createFileGc } from '../../src/tracker/services/file-gc.js';
import { MIGRATIONS, type Store } from '../../src/tracker/store/index.js';
import { nestedTree } from './manifest-pages-suite.js';

/** Migrates `before` (a store with the schema before 0020) and writes a live and a dead folder and an orphan page; closes it. */
// biome-ignore lint/suspicious/noExplicitAny: the schema before 0020, not today's Database type
export async function storeBefore0020(before: Kysely<any>) {
  const live = pagesOf(nestedTree(2000, 'live'));
  const dead = pagesOf(nestedTree(2000, 'dead'));
  const orphan = pagesOf(nestedTree(50, 'orphan')).pages.at(-1)!;
  const earlier = Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name < '0020'));
  const migrated = await new Migrator({
    db: before,
    provider: { getMigrations: async () => earlier },
    migrationTableName: 'coterie_migrations',
  }).migrateToLatest();
  expect(migrated.error).toBeUndefined();
  await before.insertInto('users').values({ user_id: 'ann', password_hash: 'x', created_at: 1 }).execute();
  await before.insertInto('groups').values({ group_id: 'g', owner_id: 'ann', created_at: 1 }).execute();
  const pageRows = new Map(
    [...live.pages, ...dead.pages, orphan].map((p) => [p.hash, JSON.stringify(p.page)] as const),
  );
  for (const [hash, body] of pageRows) {
    await before.insertInto('manifest_pages').values({ hash, body, created_at: 1 }).execute();
  }
  for (const root of [live.root, dead.root]) {
    await before
      .insertInto('files')
      .values({
        file_id: rootFileId(root),
        size: root.size,
        piece_size: root.pieceSize,
        piece_count: root.pieceCount,
        manifest: JSON.stringify(root),
        created_at: 1,
      })
      .execute();
  }
  await before
    .insertInto('group_files')
    .values({
      group_id: 'g',
      file_id: rootFileId(live.root),
      name: 'live',
      version: 1,
      created_by: 'ann',
      created_at: 1,
    })
    .execute();
  await before.destroy();
  return { live, dead, orphan };
}

/** The store, opened (migrated to 0020 and on): references filled; the GC keeps the live file whole. */
export async function expectAfter0020(store: Store, seeded: Awaited<ReturnType<typeof storeBefore0020>>) {
  const { live, dead, orphan } = seeded;
  const liveId = rootFileId(live.root);
  const deadId = rootFileId(dead.root);
  const refs = await store.db.selectFrom('manifest_page_refs').select(['file_id', 'hash']).execute();
  const refsOf = (id: string) =>
    refs
      .filter((r) => r.file_id === id)
      .map((r) => r.hash)
      .sort();
  expect(refsOf(liveId)).toEqual([...new Set(live.pages.map((p) => p.hash))].sort());
  expect(refsOf(deadId)).toEqual([...new Set(dead.pages.map((p) => p.hash))].sort());

  const clock = { t: 10_000_000 };
  const gc = createFileGc({
    trackerId: 't',
    graceMs: 1000,
    orphanGraceMs: 1000,
    logger: pino({ level: 'silent' }),
  })({ store, bus: createLocalEventBus(), now: () => clock.t });
  expect(await gc.runNow()).toMatchObject({ marked: 1, files: 0, orphans: 1 });
  clock.t += 2000;
  expect(await gc.runNow()).toMatchObject({ files: 1, orphans: 0 });
  await gc.stop();
  const files = await store.db.selectFrom('files').select('file_id').execute();
  expect(files.map((f) => f.file_id)).toEqual([liveId]);
  const pages = new Set(
    (await store.db.selectFrom('manifest_pages').select('hash').execute()).map((r) => r.hash),
  );
  for (const p of live.pages) expect(pages.has(p.hash)).toBe(true);
  const deadOnly = dead.pages.filter((p) => !live.pages.some((l) => l.hash === p.hash));
  expect(deadOnly.length).toBeGreaterThan(0);
  for (const p of deadOnly) expect(pages.has(p.hash)).toBe(false);
  expect(pages.has(orphan.hash)).toBe(false);
  expect(pages.size).toBe(new Set(live.pages.map((p) => p.hash)).size);
}
