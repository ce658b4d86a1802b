// PostgreSQL for the cluster tests: the server given by COTERIE_TEST_PG_URL
// (scripts/pg-test-server.sh starts one), and a fresh database per use.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';

export function pgTestUrl(): string | undefined {
  const url = process.env.COTERIE_TEST_PG_URL;
  return url === undefined || url === '' ? undefined : url;
}

/** Says once, on stderr, why a cluster file ran nothing. */
export function reportSkipped(what: string): void {
  process.stderr.write(
    `\n[cluster] SKIPPED ${what}: no PostgreSQL (set COTERIE_TEST_PG_URL, e.g. scripts/pg-test-server.sh run -- npm test)\n\n`,
  );
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database on the test server (C collation, like the test server's own). */
export async function createTestDatabase(baseUrl = pgTestUrl()): Promise<TestDatabase> {
  if (baseUrl === undefined) throw new Error('COTERIE_TEST_PG_URL is not set');
  const name = `coterie_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(
      `CREATE DATABASE ${name} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`,
    );
  } finally {
    await admin.end();
  }
  const u = new URL(baseUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** One database per tracker data directory (a restarted tracker finds its data again); drop them all at the end. */
export function databasePerDataDir() {
  const dbs = new Map<string, Promise<TestDatabase>>();
  return {
    storeFor(dataDir: string): Promise<string> {
      let db = dbs.get(dataDir);
      if (db === undefined) {
        db = createTestDatabase();
        dbs.set(dataDir, db);
      }
      return db.then((d) => d.url);
    },
    async dropAll(): Promise<void> {
      for (const db of dbs.values()) await (await db).drop().catch(() => {});
      dbs.clear();
    },
  };
}

/**
 * The flags that give a cluster's trackers one key file (it wraps the signing keys the shared
 * store holds): the first tracker makes ROOT/tracker.key, the others use it.
 */
export function sharedKeyFile(root: string): string[] {
  return ['--key-file', join(root, 'tracker.key')];
}

/** Fast membership for cluster tests: a killed tracker is dead after 1 s and its sessions reaped 1.5 s later. */
export const FAST_MEMBERSHIP_FLAGS = Object.freeze([
  '--cluster-heartbeat-ms',
  '200',
  '--cluster-dead-after-ms',
  '1000',
  '--presence-grace-ms',
  '1500',
]);
