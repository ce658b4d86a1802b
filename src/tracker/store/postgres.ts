import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import type pg from 'pg';
import { createStepBackoff } from '../../core/index.js';
import { CoterieError } from '../../protocol/errors.js';
import {
  duringCommit,
  failoverPool,
  failoverUnavailable,
  isFailoverError,
  isRerunnable,
} from './failover.js';
import { idempotencyRestorePoint, markingIdempotency } from './idempotency-context.js';
import { parsePgHosts, redactUrl } from './pg-hosts.js';
import { createPrimaryLocator, firstPrimary, type PrimaryLocatorOptions, sessionOptions } from './primary.js';
import type { Database } from './schema.js';
import { createWriteBatcher, type Store } from './store.js';

/**
 * The PostgreSQL dialect of the one Store: the same Kysely queries and
 * migrations as SQLite, over a connection pool. Several trackers share one
 * database (active-active); see DESIGN.md, Stores and the cluster.
 */

/** Connections per tracker: enough for the routes' concurrency; three trackers stay far below max_connections. */
const POOL_SIZE = 10;
/**
 * A session-level advisory lock key ("cote" in ASCII) held around the
 * migrator, so trackers starting at once migrate one after the other (Kysely's
 * own lock does not cover creating its bookkeeping tables).
 */
const MIGRATION_LOCK_KEY = 0x636f7465;
/**
 * Concurrent transactions on different trackers can collide (two first shares
 * of one name, a deadlock between two writers): PostgreSQL aborts one of them,
 * which then runs again from the start, at most this many times in all.
 */
const TRANSACTION_ATTEMPTS = 4;
/** SQLSTATEs worth a retry: unique_violation, serialization_failure, deadlock_detected. */
const RETRYABLE = new Set(['23505', '40001', '40P01']);
/**
 * A short, random pause before retry n, anywhere in 0–10·n ms ("full
 * jitter": 5·n ± 100 %), so the two colliding writers do not collide again.
 */
const COLLISION_BACKOFF = createStepBackoff({ stepsMs: [0, 5, 10, 15], jitter: 1 });
/** A transaction met by a failover before its commit runs again for this long (the primary found again). */
const FAILOVER_RERUN_MS = 8_000;

export { isPostgresUrl, redactUrl } from './pg-hosts.js';

export interface PostgresStoreOptions {
  requireSyncStandby: boolean;
  log: PrimaryLocatorOptions['log'];
  /** At start, every host answered as a standby: told why, before the store waits for a promotion. */
  onWaitingForPrimary?: (reason: string) => Promise<void>;
}

export async function openPostgresStore(
  url: string,
  migrate: (db: Kysely<Database>) => Promise<void>,
  options: PostgresStoreOptions,
): Promise<Store> {
  const hosts = parsePgHosts(url);
  const locator = createPrimaryLocator({
    hosts,
    requireSyncStandby: options.requireSyncStandby,
    poolSize: POOL_SIZE,
    log: options.log,
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: failoverPool(locator) }) });
  try {
    await firstPrimary(locator, hosts, options.requireSyncStandby, options.onWaitingForPrimary);
    await migrateLocked((await locator.current()).pool, db, migrate);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw CoterieError.from(
      err,
      'UNAVAILABLE',
      (text) => `cannot open the PostgreSQL store at ${redactUrl(url)}: ${text}`,
    );
  }
  const transaction = <T>(body: (trx: Transaction<Database>) => Promise<T>) =>
    runTransaction(db, markingIdempotency(body));
  // Group commit, as on SQLite: with fsync on, a commit costs a WAL flush, far more than the
  // small writes it carries. A write that collided inside the batch, or met a failover before
  // the batch's commit, runs again on its own.
  const batcher = createWriteBatcher(db);
  const batchedTransaction = <T>(body: (trx: Transaction<Database>) => Promise<T>) => {
    const fn = markingIdempotency(body);
    const restore = idempotencyRestorePoint();
    return batcher.run(fn).catch((err: unknown) => {
      if (!isRetryable(err) && !isRerunnable(err)) return Promise.reject(err);
      restore();
      return transaction(fn);
    });
  };
  return {
    db,
    dialect: 'postgres',
    location: redactUrl(url),
    postgresUrl: url,
    primary: {
      status: () => locator.status(),
      async connection() {
        const { host, generation } = await locator.current();
        const opts = sessionOptions(options.requireSyncStandby);
        return {
          config: { connectionString: host.url, ...(opts === undefined ? {} : { options: opts }) },
          lost: () => locator.suspect(generation),
        };
      },
    },
    transaction,
    batchedTransaction,
    statement: (fn) => runStatement(db, fn),
    close: async () => {
      await batcher.drain();
      await db.destroy();
    },
  };
}

async function migrateLocked(
  pool: pg.Pool,
  db: Kysely<Database>,
  migrate: (db: Kysely<Database>) => Promise<void>,
): Promise<void> {
  const client = await pool.connect();
  client.on('error', () => {});
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migrate(db);
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}

function isRetryable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE.has(code);
}

/**
 * One transaction, run again after a collision (a few times) or a failover met before its
 * commit (while the primary is found again, up to FAILOVER_RERUN_MS); never after a failover
 * during its commit (failover.ts says why).
 */
async function runTransaction<T>(
  db: Kysely<Database>,
  fn: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  const restore = idempotencyRestorePoint();
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await oneTransaction(db, fn);
    } catch (err) {
      restore();
      if (isRetryable(err) && attempt < TRANSACTION_ATTEMPTS) {
        await new Promise((r) => setTimeout(r, COLLISION_BACKOFF.delayMs(attempt)));
        continue;
      }
      // No pause: the next try waits in the locator for a primary (and fails UNAVAILABLE if none comes).
      if (isRerunnable(err) && Date.now() - started < FAILOVER_RERUN_MS) continue;
      throw isFailoverError(err) ? failoverUnavailable(err) : err;
    }
  }
}

/**
 * One statement in a transaction of its own (autocommit: one round trip, not three), run again
 * after a collision; after a failover met before the statement was sent (no connection), run
 * again as a transaction would be; once sent, a failover leaves its outcome unknown, as during a
 * COMMIT: UNAVAILABLE, never run again here.
 */
async function runStatement<T>(db: Kysely<Database>, fn: (db: Kysely<Database>) => Promise<T>): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    let sent = false;
    try {
      return await db.connection().execute((conn) => {
        sent = true;
        return fn(conn);
      });
    } catch (err) {
      if (isRetryable(err) && attempt < TRANSACTION_ATTEMPTS) {
        await new Promise((r) => setTimeout(r, COLLISION_BACKOFF.delayMs(attempt)));
        continue;
      }
      if (!sent && isRerunnable(err) && Date.now() - started < FAILOVER_RERUN_MS) continue;
      if (sent) throw duringCommit(err);
      throw isFailoverError(err) ? failoverUnavailable(err) : err;
    }
  }
}

async function oneTransaction<T>(
  db: Kysely<Database>,
  fn: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  const trx = await db.startTransaction().execute();
  let value: T;
  try {
    value = await fn(trx);
  } catch (err) {
    await trx.rollback().execute().catch(ignore);
    throw err;
  }
  try {
    await trx.commit().execute();
  } catch (err) {
    throw duringCommit(err);
  }
  return value;
}

function ignore(): void {}

/** The database's clock in ms: one clock for every tracker of a cluster. */
export async function databaseNowMs(db: Kysely<Database>): Promise<number> {
  const r = await sql<{
    t: string;
  }>`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS t`.execute(db);
  return Number(r.rows[0]!.t);
}
