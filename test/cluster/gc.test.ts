import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, describe, it } from 'vitest';
import { openStore, type Store } from '../../src/tracker/store/index.js';
import { gcSuite } from '../helpers/gc-suite.js';
import { expectAfter0020, storeBefore0020 } from '../helpers/migration-0020.js';
import { createTestDatabase, pgTestUrl, reportSkipped, type TestDatabase } from './pg.js';

// The file GC on PostgreSQL: the same suite as on SQLite (test/integration/tracker-gc.test.ts).
if (pgTestUrl() === undefined) {
  reportSkipped('the file GC test');
  it.skip('file GC on PostgreSQL (needs COTERIE_TEST_PG_URL)', () => {});
} else {
  const databases: TestDatabase[] = [];
  afterAll(async () => {
    for (const d of databases) await d.drop();
  });
  gcSuite('PostgreSQL', async () => {
    const d = await createTestDatabase();
    databases.push(d);
    return d.url;
  });

  describe('migration 0020_page_refs on PostgreSQL', () => {
    let store: Store | undefined;
    afterAll(async () => {
      await store?.close();
    });
    it('fills the references of existing files: the GC then keeps live files whole and removes dead ones', async () => {
      const d = await createTestDatabase();
      databases.push(d);
      const seeded = await storeBefore0020(
        new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: d.url }) }) }),
      );
      store = await openStore({ location: d.url });
      await expectAfter0020(store, seeded);
    });
  });
}
