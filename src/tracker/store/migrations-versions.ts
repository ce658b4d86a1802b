import { type Kysely, type Migration, sql } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: Kysely's migration signature: migrations must not depend on today's schema type
type AnyDb = Kysely<any>;

/**
 * File versions, deletes and locks (issue 16).
 *
 * - `file_names`: one row per listed name of a group: its current version
 *   (versions are numbered from 1 and never reused while the name lives), the
 *   author of version 1, and the lease of its lock (holder, peer, expiry).
 *   Every write to a name (update, delete, lock, unlock) goes through this
 *   row, so PostgreSQL's row lock serializes them across trackers.
 * - `group_files` gains `version`: one row per retained version of a name.
 *   SQLite cannot drop the old UNIQUE (group_id, name), so the table is
 *   rebuilt, and `shares` with it (its foreign key points at group_files),
 *   in portable SQL: new tables, copy, drop, rename.
 * - `groups.keep_versions`: the retention (null: the default, 5).
 * - `file_deletions`: deleted file ids of the last hour (the longest ticket
 *   lifetime), replayed to sessions that say hello, as ticket revocations are.
 */
export const m0014_file_versions: Migration = {
  async up(db: AnyDb) {
    // Kysely runs PostgreSQL's migrations in a transaction but not SQLite's: the rebuild must be all or nothing.
    if (db.isTransaction) await rebuild(db);
    else await db.transaction().execute(rebuild);
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('file_deletions').ifExists().execute();
    await db.schema.dropTable('file_names').ifExists().execute();
  },
};

async function rebuild(db: AnyDb) {
  await db.schema.alterTable('groups').addColumn('keep_versions', 'integer').execute();
  await db.schema
    .createTable('group_files_v')
    .addColumn('group_id', 'varchar(64)', (c) =>
      c.notNull().references('groups.group_id').onDelete('cascade'),
    )
    .addColumn('file_id', 'varchar(64)', (c) => c.notNull().references('files.file_id'))
    .addColumn('name', 'varchar(1024)', (c) => c.notNull())
    .addColumn('version', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('group_files_v_pk', ['group_id', 'file_id'])
    // Two writers can never both land version N of one name.
    .addUniqueConstraint('group_files_v_version', ['group_id', 'name', 'version'])
    .execute();
  await sql`INSERT INTO group_files_v (group_id, file_id, name, version, created_by, created_at)
    SELECT group_id, file_id, name, 1, created_by, created_at FROM group_files`.execute(db);
  await db.schema
    .createTable('shares_v')
    .addColumn('group_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('file_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('peer_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.user_id'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('shares_v_pk', ['group_id', 'file_id', 'peer_id'])
    .addForeignKeyConstraint(
      'shares_v_group_file',
      ['group_id', 'file_id'],
      'group_files_v',
      ['group_id', 'file_id'],
      (c) => c.onDelete('cascade'),
    )
    .execute();
  await sql`INSERT INTO shares_v (group_id, file_id, peer_id, user_id, created_at)
    SELECT group_id, file_id, peer_id, user_id, created_at FROM shares`.execute(db);
  // shares first: nothing references it, and then nothing references group_files (no cascade on drop).
  await db.schema.dropTable('shares').execute();
  await db.schema.dropTable('group_files').execute();
  // SQLite (legacy_alter_table off) and PostgreSQL both carry the foreign key along the rename.
  await db.schema.alterTable('group_files_v').renameTo('group_files').execute();
  await db.schema.alterTable('shares_v').renameTo('shares').execute();
  await db.schema.createIndex('shares_user').on('shares').columns(['user_id', 'group_id']).execute();

  await db.schema
    .createTable('file_names')
    .addColumn('group_id', 'varchar(64)', (c) =>
      c.notNull().references('groups.group_id').onDelete('cascade'),
    )
    .addColumn('name', 'varchar(1024)', (c) => c.notNull())
    .addColumn('current_version', 'bigint', (c) => c.notNull())
    .addColumn('created_by', 'varchar(64)', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('lock_holder', 'varchar(64)')
    .addColumn('lock_peer', 'varchar(64)')
    .addColumn('lock_expires_at', 'bigint')
    .addPrimaryKeyConstraint('file_names_pk', ['group_id', 'name'])
    .execute();
  await sql`INSERT INTO file_names (group_id, name, current_version, created_by, created_at)
    SELECT group_id, name, 1, created_by, created_at FROM group_files`.execute(db);

  await db.schema
    .createTable('file_deletions')
    .addColumn('group_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('file_id', 'varchar(64)', (c) => c.notNull())
    .addColumn('name', 'varchar(1024)', (c) => c.notNull())
    .addColumn('deleted_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('file_deletions_pk', ['group_id', 'file_id'])
    .execute();
  await db.schema.createIndex('file_deletions_at').on('file_deletions').column('deleted_at').execute();
}
