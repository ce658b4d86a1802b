import { Kysely, PostgresDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { createStepBackoff } from '../../core/index.js';
import { CoterieError } from '../../protocol/errors.js';
import { markingIdempotency } from './idempotency-context.js';
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

export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location);
}

/** The URL without its password, for logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://…';
  }
}

export async function openPostgresStore(
  url: string,
  migrate: (db: Kysely<Database>) => Promise<void>,
): Promise<Store> {
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, connectionTimeoutMillis: 10_000 });
  // A connection dropped by the server (restart, failover) must not crash the tracker: queries on it fail, the pool replaces it.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateLocked(pool, db, migrate);
  } catch (err) {
    await db.destroy().catch(() => {});
    throw CoterieError.from(
      err,
      'UNAVAILABLE',
      (text) => `cannot open the PostgreSQL store at ${redactUrl(url)}: ${text}`,
    );
  }
  const transaction = <T>(body: (trx: Transaction<Database>) => Promise<T>) => {
    const fn = markingIdempotency(body);
    return withRetry(() => db.transaction().execute(fn));
  };
  // Group commit, as on SQLite: with fsync on, a commit costs a WAL flush, far more than the
  // small writes it carries. A write that collided inside the batch runs again on its own.
  const batcher = createWriteBatcher(db);
  const batchedTransaction = <T>(body: (trx: Transaction<Database>) => Promise<T>) => {
    const fn = markingIdempotency(body);
    return batcher
      .run(fn)
      .catch((err: unknown) => (isRetryable(err) ? transaction(fn) : Promise.reject(err)));
  };
  return {
    db,
    dialect: 'postgres',
    location: redactUrl(url),
    postgresUrl: url,
    transaction,
    batchedTransaction,
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

async function withRetry<T>(run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (err) {
      if (attempt >= TRANSACTION_ATTEMPTS || !isRetryable(err)) throw err;
      await new Promise((r) => setTimeout(r, COLLISION_BACKOFF.delayMs(attempt)));
    }
  }
}

/** The database's clock in ms: one clock for every tracker of a cluster. */
export async function databaseNowMs(db: Kysely<Database>): Promise<number> {
  const r = await sql<{
    t: string;
  }>`SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS t`.execute(db);
  return Number(r.rows[0]!.t);
}
