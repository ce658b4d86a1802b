// The tracker's integration suites (test/integration/tracker-*.test.ts), run
// once more with every tracker on PostgreSQL instead of SQLite: the same test
// files, only the store differs (spawnTracker asks useStoreForDataDir).
import { afterAll, it } from 'vitest';
import { useStoreForDataDir } from '../helpers/tracker.js';
import { databasePerDataDir, pgTestUrl, reportSkipped } from './pg.js';

if (pgTestUrl() !== undefined) {
  const dbs = databasePerDataDir();
  useStoreForDataDir((dir) => dbs.storeFor(dir));
  // Registered first, so it runs after the suites' own afterAll hooks (which stop their trackers).
  afterAll(() => dbs.dropAll());
  await import('../integration/tracker-api.test.js');
  await import('../integration/tracker-session.test.js');
  await import('../integration/tracker-lifecycle.test.js');
  await import('../integration/tracker-fuzz.test.js');
  await import('../integration/tracker-members.test.js');
  await import('../integration/tracker-versions.test.js');
  await import('../integration/tracker-storage.test.js');
} else {
  reportSkipped('the tracker suites on PostgreSQL');
  it.skip('tracker suites on PostgreSQL (needs COTERIE_TEST_PG_URL)', () => {});
}
