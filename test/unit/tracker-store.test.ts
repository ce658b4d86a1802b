import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import { createLookupAnswers } from '../../src/tracker/services/lookup-answers.js';
import { createReadCache } from '../../src/tracker/services/read-cache.js';
import { MIGRATIONS, openStore, type Store } from '../../src/tracker/store/index.js';
import { prepared } from '../../src/tracker/store/prepared.js';
import { expectAfter0020, storeBefore0020 } from '../helpers/migration-0020.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

let dir: string | undefined;
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe('store', () => {
  it('migrates a fresh SQLite file and reopens it', async () => {
    dir = tempDir('coterie-store-').path;
    store = await openStore({ location: join(dir, 'tracker.db') });
    await store.db.insertInto('users').values({ user_id: 'u', password_hash: 'x', created_at: 1 }).execute();
    await store.close();
    store = await openStore({ location: join(dir, 'tracker.db') });
    const row = await store.db.selectFrom('users').selectAll().executeTakeFirst();
    expect(row).toMatchObject({ user_id: 'u' });
  });

  it('refuses a URL that is not postgres:// instead of making a file of it', async () => {
    for (const location of ['mysql://u:secret@h/db', 'postgress://h/db', 'file:///x.db']) {
      const err = await openStore({ location }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'USAGE' });
      expect((err as Error).message).not.toContain('secret');
      // As a relative path, 'mysql://…' would have made a directory 'mysql:' here.
      expect(existsSync(location.slice(0, location.indexOf('/')))).toBe(false);
    }
  });

  it('commits batched writes together; a failing write rolls back only itself', async () => {
    dir = tempDir('coterie-store-').path;
    store = await openStore({ location: join(dir, 'tracker.db') });
    const s = store;
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((id) =>
        s.batchedTransaction(async (trx) => {
          await trx.insertInto('users').values({ user_id: id, password_hash: 'x', created_at: 1 }).execute();
          if (id === 'b') throw new CoterieError('BAD_REQUEST', 'no b');
          return id;
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const ids = (await s.db.selectFrom('users').select('user_id').orderBy('user_id').execute()).map(
      (r) => r.user_id,
    );
    expect(ids).toEqual(['a', 'c']);
  });

  it('starts the WAL over while writes never pause, and no write fails meanwhile', async () => {
    dir = tempDir('coterie-store-').path;
    const path = join(dir, 'tracker.db');
    store = await openStore({ location: path, checkpoints: { intervalMs: 5, restartFrames: 64 } });
    const s = store;
    const filler = 'x'.repeat(16 * 1024);
    const writes = 800;
    let largestLog = 0;
    for (let i = 0; i < writes; i++) {
      // As a batch of sends does: a read, then writes. Opened DEFERRED, such a transaction would fail
      // with SQLITE_BUSY at its first write whenever the checkpointer holds the write lock.
      await s.transaction(async (trx) => {
        await trx
          .selectFrom('users')
          .select('user_id')
          .where('user_id', '=', `u${i - 1}`)
          .execute();
        await trx
          .insertInto('users')
          .values({ user_id: `u${i}`, password_hash: filler, created_at: i })
          .execute();
      });
      largestLog = Math.max(largestLog, statSync(`${path}-wal`).size);
      // A tracker's loop does other work between two batches: the checkpointer takes its turn there.
      await new Promise((r) => setTimeout(r, 0));
    }
    const { n } = await s.db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow();
    expect(n).toBe(writes);
    // 12 MiB and more went through the log. A passive checkpoint alone never sees the moment the
    // log could start over (a writer beginning after every frame was copied back), so the log grew
    // by all of it until the tracker's own thread checkpointed at 20,000 pages.
    expect(largestLog).toBeLessThan(6 * 1024 * 1024);
  });

  it('lets the checkpointer start the log over between two writes: a write meanwhile waits on the event loop', async () => {
    dir = tempDir('coterie-store-').path;
    // Element 0: the restart holds the write lock while it is 1; element 1: set once it holds it.
    const hold = new Int32Array(new SharedArrayBuffer(8));
    Atomics.store(hold, 0, 1);
    store = await openStore({
      location: join(dir, 'tracker.db'),
      checkpoints: { intervalMs: 5, restartFrames: 1, holdLock: hold.buffer as SharedArrayBuffer },
    });
    const s = store;
    const insert = (id: string) =>
      s.transaction((trx) =>
        trx.insertInto('users').values({ user_id: id, password_hash: 'x', created_at: 1 }).execute(),
      );
    await insert('before');
    // The worker asked for the lock between two writes and got it: it holds it, as a restart whose
    // fsync waits on a busy disk.
    await until('the checkpointer holds the write lock', () => Atomics.load(hold, 1) === 1, 10_000);
    // A transaction and a lone statement alike.
    const during = Promise.all([
      insert('during'),
      s.statement((db) =>
        db.insertInto('users').values({ user_id: 'lone', password_hash: 'x', created_at: 1 }).execute(),
      ),
    ]);
    // Let go from a timer: only a write that waits on the event loop lets it run. One that waited in
    // SQLite's busy handler blocked the thread, and failed with SQLITE_BUSY after busy_timeout.
    setTimeout(() => {
      Atomics.store(hold, 0, 0);
      Atomics.notify(hold, 0);
    }, 0);
    await during;
    const ids = (await s.db.selectFrom('users').select('user_id').orderBy('user_id').execute()).map(
      (r) => r.user_id,
    );
    expect(ids).toEqual(['before', 'during', 'lone']);
  });

  it('runs prepared queries with fresh parameters, including a parameter used twice', async () => {
    dir = tempDir('coterie-store-').path;
    store = await openStore({ location: join(dir, 'tracker.db') });
    const insert = prepared((db, p) =>
      db
        .insertInto('users')
        .values({ user_id: p(0), password_hash: p(1), created_at: p(2) })
        .onConflict((oc) => oc.column('user_id').doUpdateSet({ password_hash: p(1) })),
    );
    const byId = prepared((db, p) =>
      db.selectFrom('users').select(['user_id', 'password_hash']).where('user_id', '=', p(0)),
    );
    await insert.execute(store.db, ['a', 'h1', 1]);
    await insert.execute(store.db, ['b', 'h2', 2]);
    await insert.execute(store.db, ['a', 'h3', 3]);
    expect((await byId.execute(store.db, ['a'])).rows).toEqual([{ user_id: 'a', password_hash: 'h3' }]);
    expect((await byId.execute(store.db, ['b'])).rows).toEqual([{ user_id: 'b', password_hash: 'h2' }]);
    expect((await byId.execute(store.db, ['zz'])).rows).toEqual([]);
  });

  it('refuses a PostgreSQL URL for now with a clear error', async () => {
    await expect(openStore({ location: 'postgres://localhost/x' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
  });
});

describe('read cache', () => {
  it('expires, invalidates by tag, and ignores values loaded across an invalidation', () => {
    let t = 0;
    const c = createReadCache<number>({ ttlMs: 100, maxEntries: 2, now: () => t });
    c.set('k1', 'g1', 1, c.generation());
    expect(c.get('k1')).toBe(1);
    const before = c.generation();
    c.invalidateTag('g1');
    expect(c.get('k1')).toBeUndefined();
    c.set('k1', 'g1', 2, before);
    expect(c.get('k1')).toBeUndefined();
    c.set('k1', 'g1', 3, c.generation());
    t = 150;
    expect(c.get('k1')).toBeUndefined();
    c.set('a', 'x', 1, c.generation());
    c.set('b', 'x', 2, c.generation());
    c.set('c', 'y', 3, c.generation());
    expect(c.get('a')).toBeUndefined();
    expect(c.get('c')).toBe(3);
  });

  it('reads through: loads a miss once, and keeps no value an invalidation overtook', async () => {
    const c = createReadCache<number>({ ttlMs: 100, maxEntries: 8, now: () => 0 });
    let loads = 0;
    const load = () => Promise.resolve(++loads);
    expect(await c.through('k', 'g', load)).toBe(1);
    expect(await c.through('k', 'g', load)).toBe(1);
    expect(loads).toBe(1);
    c.invalidateTag('g');
    const overtaken = c.through('k', 'g', async () => {
      c.invalidateTag('g'); // a change lands while the store is read
      return load();
    });
    expect(await overtaken).toBe(2);
    expect(c.get('k')).toBeUndefined();
    expect(await c.through('k', 'g', load)).toBe(3);
    expect(c.get('k')).toBe(3);
  });
});

describe('lookup answers', () => {
  it('reuse an answer only for the very parts it was built from, bounded in entries and characters', () => {
    const a = createLookupAnswers({ maxEntries: 2, maxBytes: 10 });
    const listed = { fileId: 'f' };
    const seeders: unknown[] = [];
    a.set('k1', [listed, seeders], '1234');
    expect(a.get('k1', [listed, seeders])).toBe('1234');
    // Equal but not the same object: a read cache reloaded it, the answer is built again.
    expect(a.get('k1', [listed, []])).toBeUndefined();
    expect(a.get('k1', [listed])).toBeUndefined();
    a.set('k2', [listed], '5678');
    a.set('k3', [listed], '90');
    expect(a.get('k1', [listed, seeders])).toBeUndefined(); // over two entries: the oldest left
    a.set('k4', [listed], '123456');
    expect(a.get('k2', [listed])).toBeUndefined(); // over ten characters: the oldest left
    expect(a.get('k3', [listed])).toBe('90');
    a.set('big', [listed], '12345678901');
    expect(a.get('big', [listed])).toBeUndefined(); // larger than the whole bound: not kept
  });
});

// Migration 0014 (file versions) on a store made by the migrations before it: its groups, files
// and shares come through the rebuild of group_files and shares, each file as version 1 of its name.
/** A store as the tracker left it before 0014, with one group, two files and three shares. */
async function storeBefore0014(path: string) {
  const sqlite = new SQLite(path);
  sqlite.pragma('foreign_keys = ON');
  // biome-ignore lint/suspicious/noExplicitAny: the schema before 0014, not today's Database type
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: sqlite }) });
  const earlier = Object.fromEntries(Object.entries(MIGRATIONS).filter(([name]) => name < '0014'));
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => earlier },
    migrationTableName: 'coterie_migrations',
  });
  const { error } = await migrator.migrateToLatest();
  expect(error).toBeUndefined();
  await db
    .insertInto('users')
    .values([
      { user_id: 'ann', password_hash: 'x', created_at: 1 },
      { user_id: 'ben', password_hash: 'x', created_at: 1 },
    ])
    .execute();
  await db.insertInto('groups').values({ group_id: 'g', owner_id: 'ann', created_at: 2 }).execute();
  for (const f of ['a', 'b']) {
    const fileId = f.repeat(64);
    await db
      .insertInto('files')
      .values({ file_id: fileId, size: 10, piece_size: 16384, piece_count: 1, manifest: '{}', created_at: 3 })
      .execute();
    await db
      .insertInto('group_files')
      .values({ group_id: 'g', file_id: fileId, name: `${f}.txt`, created_by: 'ann', created_at: 4 })
      .execute();
  }
  await db
    .insertInto('shares')
    .values([
      { group_id: 'g', file_id: 'a'.repeat(64), peer_id: '1'.repeat(64), user_id: 'ann', created_at: 5 },
      { group_id: 'g', file_id: 'a'.repeat(64), peer_id: '2'.repeat(64), user_id: 'ben', created_at: 5 },
      { group_id: 'g', file_id: 'b'.repeat(64), peer_id: '1'.repeat(64), user_id: 'ann', created_at: 6 },
    ])
    .execute();
  await db.destroy();
}

describe('migration 0014_file_versions', () => {
  it('keeps every file and share, each file as version 1 of its name, and the cascades work', async () => {
    dir = tempDir('coterie-store-v-').path;
    const path = join(dir, 'tracker.db');
    await storeBefore0014(path);
    store = await openStore({ location: path });
    const db = store.db;
    const files = await db
      .selectFrom('group_files')
      .select(['file_id', 'name', 'version'])
      .orderBy('name')
      .execute();
    expect(files.map((f) => [f.name, Number(f.version)])).toEqual([
      ['a.txt', 1],
      ['b.txt', 1],
    ]);
    const names = await db.selectFrom('file_names').selectAll().orderBy('name').execute();
    expect(names.map((n) => [n.name, Number(n.current_version), n.created_by, n.lock_holder])).toEqual([
      ['a.txt', 1, 'ann', null],
      ['b.txt', 1, 'ann', null],
    ]);
    expect(await db.selectFrom('shares').select(['file_id', 'peer_id']).execute()).toHaveLength(3);
    const g = await db.selectFrom('groups').select('keep_versions').executeTakeFirstOrThrow();
    expect(g.keep_versions).toBeNull();
    // Versions of one name may now share it; a version number may not repeat.
    await db
      .insertInto('files')
      .values({
        file_id: 'c'.repeat(64),
        size: 1,
        piece_size: 16384,
        piece_count: 1,
        manifest: '{}',
        created_at: 7,
      })
      .execute();
    const v2 = {
      group_id: 'g',
      file_id: 'c'.repeat(64),
      name: 'a.txt',
      version: 2,
      created_by: 'ben',
      created_at: 7,
    };
    await db.insertInto('group_files').values(v2).execute();
    await expect(
      db
        .insertInto('group_files')
        .values({ ...v2, file_id: 'b'.repeat(64) })
        .execute(),
    ).rejects.toThrow(/UNIQUE|PRIMARY/i);
    // Shares still follow their listing (the foreign key survived the rename).
    await db.deleteFrom('group_files').where('file_id', '=', 'a'.repeat(64)).execute();
    expect(await db.selectFrom('shares').select('peer_id').execute()).toHaveLength(1);
    await expect(
      db
        .insertInto('shares')
        .values({
          group_id: 'g',
          file_id: 'd'.repeat(64),
          peer_id: '3'.repeat(64),
          user_id: 'ann',
          created_at: 8,
        })
        .execute(),
    ).rejects.toThrow(/FOREIGN KEY/);
  });
});

// Migration 0020 (page references) from a 0019 store (test/helpers/migration-0020.ts).
describe('migration 0020_page_refs', () => {
  it('fills the references of existing files: the GC then keeps live files whole and removes dead ones', async () => {
    dir = tempDir('coterie-store-refs-').path;
    const path = join(dir, 'tracker.db');
    const sqlite = new SQLite(path);
    sqlite.pragma('foreign_keys = ON');
    const seeded = await storeBefore0020(new Kysely({ dialect: new SqliteDialect({ database: sqlite }) }));
    store = await openStore({ location: path });
    await expectAfter0020(store, seeded);
  });
});
