import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type Transaction } from 'kysely';
import type pg from 'pg';
import { ensurePrivateFile, narrowExistingFiles, PRIVATE_DIR_MODE } from '../../os/private-files.js';
import { CoterieError } from '../../protocol/errors.js';
import { startCheckpointer } from './checkpointer.js';
import { duringCommit } from './failover.js';
import { markingIdempotency } from './idempotency-context.js';
import { migrationProvider } from './migrations.js';
import { isPostgresUrl, openPostgresStore, type PostgresStoreOptions, redactUrl } from './postgres.js';
import type { PrimaryStatus } from './primary.js';
import type { Database } from './schema.js';
import { createWriteGate, type WriteGate } from './write-gate.js';

export type StoreDialect = 'sqlite' | 'postgres';

/**
 * The tracker's one store: a Kysely instance over a dialect, migrated on
 * open. Services write their queries against `db`; every query and migration
 * is portable SQL so that PostgreSQL is a swap of dialect.
 */
export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: StoreDialect;
  /** Human-readable location for logs (file path, or URL without password). */
  readonly location: string;
  /** The connection URL of a PostgreSQL store (for the LISTEN/NOTIFY bus); undefined on SQLite. */
  readonly postgresUrl?: string;
  /** A PostgreSQL store's primary: which host it is now, how its commits are replicated. */
  readonly primary?: StorePrimary;
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
  /**
   * Like transaction(), but writes arriving together share one commit (group
   * commit): each runs inside its own savepoint, so one failing rolls back
   * only itself. For hot, small writes. `fn` must use only `trx`.
   */
  batchedTransaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
  /**
   * One statement that is its own transaction (PostgreSQL: autocommit, one round trip; retried
   * after a collision). `fn` must run a single statement on the connection it is given.
   */
  statement<T>(fn: (db: Kysely<Database>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface StorePrimary {
  /** For /readyz and /healthz. */
  status(): PrimaryStatus;
  /** For a connection of its own (the event bus): the current primary, and what to call when it is lost. */
  connection(): Promise<{ config: pg.ClientConfig; lost: () => void }>;
}

export interface OpenStoreOptions {
  /** A SQLite file path, or a postgres:// URL (one host or several: the store follows the primary). */
  location: string;
  /** PostgreSQL: refuse a primary whose commits do not wait for a synchronous standby. */
  requireSyncStandby?: boolean;
  /** Where the store reports finding and losing its primary. */
  log?: PostgresStoreOptions['log'];
  /** PostgreSQL: at start every host answered as a standby; the store waits for a promotion after this. */
  onWaitingForPrimary?: PostgresStoreOptions['onWaitingForPrimary'];
  /** SQLite: the WAL checkpointer's pace (checkpointer.ts; tests make it quick). */
  checkpoints?: { intervalMs?: number; restartFrames?: number; holdLock?: SharedArrayBuffer };
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { location } = options;
  if (isPostgresUrl(location)) {
    return openPostgresStore(location, migrate, {
      requireSyncStandby: options.requireSyncStandby ?? false,
      log: options.log ?? (() => {}),
      ...(options.onWaitingForPrimary === undefined
        ? {}
        : { onWaitingForPrimary: options.onWaitingForPrimary }),
    });
  }
  if (options.requireSyncStandby === true) {
    throw new CoterieError('USAGE', '--require-sync-standby needs a postgres:// store');
  }
  // Any other URL is a typo of one (mysql://, postgress://), not a file to create in the working directory.
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new CoterieError(
      'USAGE',
      `unsupported store '${redactUrl(location)}': a SQLite file path, or a postgres:// URL`,
    );
  }
  return openSqliteStore(location, options.checkpoints);
}

/** How often the worker checkpoints the WAL (a passive checkpoint of a small WAL is cheap). */
const CHECKPOINT_INTERVAL_MS = 1_000;

async function openSqliteStore(
  path: string,
  checkpoints: OpenStoreOptions['checkpoints'] = {},
): Promise<Store> {
  let sqlite: SQLite.Database;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
    // Made 0600 before SQLite opens it: SQLite gives its -wal and -shm files the database's mode.
    ensurePrivateFile(path);
    sqlite = new SQLite(path);
    // WAL: readers do not block the writer; NORMAL sync is durable across process crashes in WAL mode.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // A 64 MiB page cache: file ids are hashes, so inserts land on pages all over the b-trees.
    sqlite.pragma('cache_size = -65536');
    // Checkpoints run in a worker thread (checkpointer.ts); SQLite's own, on this thread, only as a
    // safety net should the WAL reach ~80 MiB (the worker failing).
    sqlite.pragma('wal_autocheckpoint = 20000');
    // A store of an earlier version may have its side files open to others: they hold the same rows.
    narrowExistingFiles([`${path}-wal`, `${path}-shm`]);
  } catch (err) {
    throw new CoterieError('UNAVAILABLE', `cannot open the store at ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  await migrate(db);
  const gate = createWriteGate();
  const batcher = createWriteBatcher(db, gate);
  const checkpointer = startCheckpointer({
    path,
    intervalMs: checkpoints.intervalMs ?? CHECKPOINT_INTERVAL_MS,
    ...(checkpoints.restartFrames === undefined ? {} : { restartFrames: checkpoints.restartFrames }),
    ...(checkpoints.holdLock === undefined ? {} : { holdLock: checkpoints.holdLock }),
    onError: (message) => process.emitWarning(`WAL checkpoint failed: ${message}`),
    gate,
  });
  return {
    db,
    dialect: 'sqlite',
    location: path,
    transaction: (fn) => gate.enter(() => db.transaction().execute(markingIdempotency(fn))),
    batchedTransaction: (fn) => batcher.run(markingIdempotency(fn)),
    // SQLite runs a statement alone as its own transaction too, so it takes its turn at the gate.
    statement: (fn) => gate.enter(() => fn(db)),
    close: async () => {
      await batcher.drain();
      await checkpointer.stop();
      await db.destroy();
    },
  };
}

/**
 * Commits cost far more than the small writes they carry (each one appends
 * pages to the WAL through several system calls), so writes queued during
 * one turn of the event loop are committed together. Portable: savepoints
 * exist on SQLite and PostgreSQL alike.
 */
const MAX_WRITES_PER_COMMIT = 128;
const SAVEPOINT = sql`savepoint coterie_write`;
const RELEASE = sql`release savepoint coterie_write`;
const ROLLBACK_TO = sql`rollback to savepoint coterie_write`;

export function createWriteBatcher(db: Kysely<Database>, gate?: WriteGate) {
  interface Job {
    fn: (trx: Transaction<Database>) => Promise<unknown>;
    resolve: (v: unknown) => void;
    reject: (e: unknown) => void;
  }
  const queue: Job[] = [];
  let running: Promise<void> | undefined;

  async function flush(): Promise<void> {
    while (queue.length > 0) {
      const jobs = queue.splice(0, MAX_WRITES_PER_COMMIT);
      const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
      let committing = false;
      // Each batch its own turn at the write gate: a checkpoint may come between two.
      const enter = gate === undefined ? (write: () => Promise<void>) => write() : gate.enter;
      try {
        await enter(async () => {
          const trx = await db.startTransaction().execute();
          try {
            for (const job of jobs) {
              // Plain SQL savepoints (standard on SQLite and PostgreSQL): Kysely's savepoint() builds a
              // new transaction object per call, which costs more than the statement itself.
              await SAVEPOINT.execute(trx);
              try {
                const value = await job.fn(trx);
                await RELEASE.execute(trx);
                outcomes.push({ ok: true, value });
              } catch (error) {
                await ROLLBACK_TO.execute(trx);
                await RELEASE.execute(trx);
                outcomes.push({ ok: false, error });
              }
            }
            committing = true;
            await trx.commit().execute();
          } catch (err) {
            await trx
              .rollback()
              .execute()
              .catch(() => {});
            throw err;
          }
        });
      } catch (err) {
        // The batch failed: every write of it failed with it. A failover during the commit leaves
        // their outcome unknown (failover.ts): they must not run again as if they had not happened.
        const error = committing ? duringCommit(err) : err;
        for (const job of jobs) job.reject(error);
        continue;
      }
      jobs.forEach((job, i) => {
        const o = outcomes[i]!;
        if (o.ok) job.resolve(o.value);
        else job.reject(o.error);
      });
    }
  }

  function kick() {
    if (running !== undefined) return;
    // setImmediate: let the requests already read in this turn of the loop join the batch.
    running = new Promise<void>((r) => setImmediate(r)).then(flush).finally(() => {
      running = undefined;
      if (queue.length > 0) kick();
    });
  }

  return {
    run<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ fn, resolve: resolve as (v: unknown) => void, reject });
        kick();
      });
    },
    async drain() {
      while (running !== undefined) await running;
    },
  };
}

/**
 * Kysely prepares every query anew; preparing (parsing and planning SQL) cost
 * more than running the statement on the hot routes. Kysely's queries have
 * their values bound as parameters, so the SQL text is a small, fixed set:
 * cache the prepared statements by text (bounded, in case of dynamic IN lists).
 */
const STATEMENT_CACHE_ENTRIES = 1000;

function withStatementCache(sqlite: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(text: string) {
      // Kysely opens transactions DEFERRED. Taking the write lock at BEGIN waits (busy_timeout) while
      // the checkpointer starts the log over (checkpointer.ts); a deferred transaction that has read
      // could not wait: it fails with SQLITE_BUSY at its first write, and a batch of sends with it.
      const sql = text === 'begin' ? 'begin immediate' : text;
      let stmt = cache.get(sql);
      if (stmt === undefined) {
        stmt = sqlite.prepare(sql);
        if (cache.size >= STATEMENT_CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
        cache.set(sql, stmt);
      }
      return stmt;
    },
  };
}

export async function migrate(db: Kysely<Database>): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    migrationTableName: 'coterie_migrations',
  });
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r) => r.status === 'Error');
  if (error !== undefined || failed !== undefined) {
    throw new CoterieError(
      'UNAVAILABLE',
      `store migration ${failed?.migrationName ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}
