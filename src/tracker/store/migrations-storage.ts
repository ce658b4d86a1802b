import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: Kysely's migration signature: migrations must not depend on today's schema type
type AnyDb = Kysely<any>;

/**
 * Storage peers (issue 16): the space members offer a group, the group's
 * replication policy, where each replica is and in what state, and the lease
 * that lets one tracker of a cluster plan at a time. Portable SQL.
 */
export const m0015_storage: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('storage_offers')
      .addColumn('group_id', 'varchar(64)', (c) =>
        c.notNull().references('groups.group_id').onDelete('cascade'),
      )
      .addColumn('peer_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.user_id'))
      .addColumn('quota_bytes', 'bigint', (c) => c.notNull())
      .addColumn('zone', 'varchar(64)', (c) => c.notNull())
      .addColumn('offered_at', 'bigint', (c) => c.notNull())
      .addColumn('withdrawing', 'integer', (c) => c.notNull())
      .addColumn('last_seen', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('storage_offers_pk', ['group_id', 'peer_id'])
      .execute();
    await db.schema.createIndex('storage_offers_peer').on('storage_offers').column('peer_id').execute();
    await db.schema
      .createTable('replication_policies')
      .addColumn('group_id', 'varchar(64)', (c) =>
        c.primaryKey().references('groups.group_id').onDelete('cascade'),
      )
      .addColumn('min_replicas', 'integer', (c) => c.notNull())
      .addColumn('max_replicas', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('replicas')
      .addColumn('group_id', 'varchar(64)', (c) =>
        c.notNull().references('groups.group_id').onDelete('cascade'),
      )
      .addColumn('file_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('peer_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('state', 'varchar(16)', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('replicas_pk', ['group_id', 'file_id', 'peer_id'])
      .execute();
    await db.schema.createIndex('replicas_peer').on('replicas').column('peer_id').execute();
    await db.schema.createIndex('replicas_file').on('replicas').column('file_id').execute();
    await db.schema
      .createTable('storage_leases')
      .addColumn('name', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('holder', 'varchar(64)', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
  },
  async down(db: AnyDb) {
    for (const t of ['storage_leases', 'replicas', 'replication_policies', 'storage_offers']) {
      await db.schema.dropTable(t).ifExists().execute();
    }
  },
};

/**
 * Storage peers (issue 16): a replica a storage peer failed to fetch (it
 * reported it missing: a full disk, no holder reachable) is not handed to
 * that peer again before `retry_at`, which doubles with each failure up to
 * a bound (core/placement.ts replicaRetryDelayMs). Portable SQL.
 */
/**
 * Storage peers (issue 16): when a storage peer last reported progress on a
 * replica it is fetching. An assignment is given up after a while without
 * progress (storage-state.ts replicasOf), not after a time sized for its bytes,
 * which a folder of thousands of small files overran. Portable SQL.
 */
export const m0019_replica_progress: Migration = {
  async up(db: AnyDb) {
    await db.schema.alterTable('replicas').addColumn('progress_at', 'bigint').execute();
  },
  async down(db: AnyDb) {
    await db.schema.alterTable('replicas').dropColumn('progress_at').execute();
  },
};

export const m0017_replica_backoffs: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('replica_backoffs')
      .addColumn('group_id', 'varchar(64)', (c) =>
        c.notNull().references('groups.group_id').onDelete('cascade'),
      )
      .addColumn('file_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('peer_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('retry_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('replica_backoffs_pk', ['group_id', 'file_id', 'peer_id'])
      .execute();
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('replica_backoffs').ifExists().execute();
  },
};
