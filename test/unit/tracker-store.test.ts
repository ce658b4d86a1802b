import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import { createReadCache } from '../../src/tracker/services/read-cache.js';
import { openStore, type Store } from '../../src/tracker/store/index.js';
import { prepared } from '../../src/tracker/store/prepared.js';

let dir: string | undefined;
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('store', () => {
  it('migrates a fresh SQLite file and reopens it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'coterie-store-'));
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
    dir = mkdtempSync(join(tmpdir(), 'coterie-store-'));
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

  it('runs prepared queries with fresh parameters, including a parameter used twice', async () => {
    dir = mkdtempSync(join(tmpdir(), 'coterie-store-'));
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
