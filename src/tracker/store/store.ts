import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Transaction } from 'kysely';
import { CoterieError } from '../../protocol/errors.js';
import { migrationProvider } from './migrations.js';
import type { Database } from './schema.js';

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
  transaction<T>(fn: (trx: Transaction<Database>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenStoreOptions {
  /** A SQLite file path, or a postgres:// URL. */
  location: string;
}

export async function openStore(options: OpenStoreOptions): Promise<Store> {
  const { location } = options;
  if (/^postgres(ql)?:\/\//.test(location)) {
    throw new CoterieError(
      'UNAVAILABLE',
      'the PostgreSQL store is not available in this version: use a SQLite path (the default --data-dir store)',
    );
  }
  return openSqliteStore(location);
}

async function openSqliteStore(path: string): Promise<Store> {
  let sqlite: SQLite.Database;
  try {
    mkdirSync(dirname(path), { recursive: true });
    sqlite = new SQLite(path);
    // WAL: readers do not block the writer; NORMAL sync is durable across process crashes in WAL mode.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    // 64 MiB of page cache (the default is 2 MiB): message ids are random keys, and index inserts at
    // random places in a B-tree larger than the cache turn every insert into page reads.
    sqlite.pragma('cache_size = -65536');
  } catch (err) {
    throw new CoterieError('UNAVAILABLE', `cannot open the store at ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  await migrate(db);
  return {
    db,
    dialect: 'sqlite',
    location: path,
    transaction: (fn) => db.transaction().execute(fn),
    close: () => db.destroy(),
  };
}

/**
 * Kysely prepares every query anew; preparing (parsing and planning SQL) cost
 * more than running the statement on the hot routes. Kysely's queries have
 * their values bound as parameters, so the SQL text is a small, fixed set:
 * cache the prepared statements by text (bounded, in case of dynamic IN lists).
 */
const STATEMENT_CACHE_ENTRIES = 500;

function withStatementCache(sqlite: SQLite.Database) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => sqlite.close(),
    prepare(sql: string) {
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
