import { afterAll, it } from 'vitest';
import { gcSuite } from '../helpers/gc-suite.js';
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
}
