import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: Kysely's migration signature: migrations must not depend on today's schema type
type AnyDb = Kysely<any>;

/**
 * The cluster's tables: tracker membership (a heartbeat row per tracker) and
 * idempotency keys (a retried call gets the stored answer instead of running
 * twice). Portable SQL, like every migration.
 */
export const m0010_cluster: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('trackers')
      .addColumn('tracker_id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('url', 'varchar(1024)', (c) => c.notNull())
      .addColumn('started_at', 'bigint', (c) => c.notNull())
      .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
      .addColumn('sessions', 'integer', (c) => c.notNull())
      .addColumn('requests_per_second', 'double precision', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('idempotency_keys')
      .addColumn('scope', 'varchar(64)', (c) => c.notNull())
      .addColumn('idem_key', 'varchar(128)', (c) => c.notNull())
      .addColumn('route', 'varchar(64)', (c) => c.notNull())
      .addColumn('status', 'integer', (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('idempotency_keys_pk', ['scope', 'idem_key'])
      .execute();
    await db.schema
      .createIndex('idempotency_keys_created')
      .on('idempotency_keys')
      .column('created_at')
      .execute();
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('idempotency_keys').ifExists().execute();
    await db.schema.dropTable('trackers').ifExists().execute();
  },
};

/**
 * Failed logins, counted in the store so that every tracker of a cluster
 * sees the same count: a limit of 5 per user must not become 5 per tracker.
 */
export const m0011_login_failures: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('login_failures')
      .addColumn('scope', 'varchar(16)', (c) => c.notNull())
      .addColumn('failure_key', 'varchar(256)', (c) => c.notNull())
      .addColumn('window_start', 'bigint', (c) => c.notNull())
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('login_failures_pk', ['scope', 'failure_key'])
      .execute();
    await db.schema
      .createIndex('login_failures_window')
      .on('login_failures')
      .column('window_start')
      .execute();
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('login_failures').ifExists().execute();
  },
};
