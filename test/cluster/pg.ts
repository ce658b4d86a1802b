// PostgreSQL for the cluster tests: the server given by COTERIE_TEST_PG_URL
// (scripts/pg-test-server.sh starts one), a fresh database per use, and
// describeWithPg, the describe of a cluster file (skip, database, trackers).
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';
import { spawnTracker, type TrackerProcess, type TrackerProcessOptions } from '../helpers/tracker.js';

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

/** What describeWithPg gives its body: read db and trackers inside hooks and tests. */
export interface PgCluster {
  /** The describe's scratch directory: tracker i in ROOT/t<i>, the shared key file in ROOT. */
  readonly root: string;
  /** The fresh database, once the describe's beforeAll ran. */
  readonly db: TestDatabase;
  /** The trackers by index; all are killed after the tests. */
  readonly trackers: TrackerProcess[];
  /** Starts (or starts again) tracker i in ROOT/t<i> on the database with the describe's flags, then `extra`. */
  startTracker(
    i: number,
    extra?: readonly string[],
    options?: TrackerProcessOptions,
  ): Promise<TrackerProcess>;
}

export interface PgClusterOptions {
  /** The scratch directory's prefix. */
  prefix: string;
  /** How many trackers are started before the tests (default 2). */
  trackers?: number;
  /** Started at once rather than one after the other (their migrations must serialize). */
  together?: boolean;
  /** Every tracker's flags after --store and the shared key file. */
  flags?: readonly string[];
  timeout?: number;
}

/**
 * A cluster test file's describe. Without COTERIE_TEST_PG_URL it says so once on stderr and
 * skips; else, before the tests, a fresh database and `trackers` trackers sharing it and one key
 * file; after them (and after the body's own afterAll hooks: vitest runs those last-registered
 * first) the trackers are SIGKILLed, the database dropped and the scratch directory removed.
 */
export function describeWithPg(
  title: string,
  options: PgClusterOptions,
  body: (cluster: PgCluster) => void,
): void {
  if (pgTestUrl() === undefined) {
    reportSkipped(title);
    it.skip(`${title} (needs COTERIE_TEST_PG_URL)`, () => {});
    return;
  }
  describe(title, { timeout: options.timeout }, () => {
    const scratch = tempDir(options.prefix);
    const trackers: TrackerProcess[] = [];
    let db: TestDatabase | undefined;
    const cluster: PgCluster = {
      root: scratch.path,
      get db() {
        if (db === undefined)
          throw new Error('the database is made in beforeAll: use it inside hooks and tests');
        return db;
      },
      trackers,
      async startTracker(i, extra = [], processOptions = {}) {
        const args = [
          '--store',
          cluster.db.url,
          ...sharedKeyFile(scratch.path),
          ...(options.flags ?? []),
          ...extra,
        ];
        const t = await spawnTracker(join(scratch.path, `t${i}`), args, processOptions);
        trackers[i] = t;
        return t;
      },
    };
    beforeAll(async () => {
      db = await createTestDatabase();
      const indexes = [...Array(options.trackers ?? 2).keys()];
      if (options.together) await Promise.all(indexes.map((i) => cluster.startTracker(i)));
      else for (const i of indexes) await cluster.startTracker(i);
    }, 60_000);
    afterAll(async () => {
      for (const t of trackers) await t?.stop('SIGKILL');
      await db?.drop();
      scratch.remove();
    });
    body(cluster);
  });
}
