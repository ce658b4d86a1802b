import type { Kysely, Migration, MigrationProvider } from 'kysely';
import { m0010_cluster, m0011_login_failures } from './migrations-cluster.js';
import { m0018_manifest_pages, m0020_page_refs } from './migrations-pages.js';
import { m0016_tracker_relay } from './migrations-relay.js';
import { m0015_storage, m0017_replica_backoffs, m0019_replica_progress } from './migrations-storage.js';
import { m0014_file_versions } from './migrations-versions.js';

/**
 * Migrations live in code (no files to ship). Portable SQL only: the same
 * migrations run on SQLite and PostgreSQL. Never edit a released migration;
 * add the next one.
 */
// biome-ignore lint/suspicious/noExplicitAny: Kysely's migration signature: migrations must not depend on today's schema type
type AnyDb = Kysely<any>;

const m0001_initial: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('users')
      .addColumn('user_id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('password_hash', 'varchar(512)', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('sessions')
      .addColumn('token_hash', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.user_id').onDelete('cascade'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
    await db.schema.createIndex('sessions_expiry').on('sessions').column('expires_at').execute();

    await db.schema
      .createTable('groups')
      .addColumn('group_id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('owner_id', 'varchar(64)', (c) => c.notNull().references('users.user_id'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('memberships')
      .addColumn('group_id', 'varchar(64)', (c) =>
        c.notNull().references('groups.group_id').onDelete('cascade'),
      )
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.user_id'))
      .addColumn('joined_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('memberships_pk', ['group_id', 'user_id'])
      .execute();
    await db.schema.createIndex('memberships_user').on('memberships').column('user_id').execute();
    await db.schema
      .createTable('join_requests')
      .addColumn('group_id', 'varchar(64)', (c) =>
        c.notNull().references('groups.group_id').onDelete('cascade'),
      )
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.user_id'))
      .addColumn('requested_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('join_requests_pk', ['group_id', 'user_id'])
      .execute();

    await db.schema
      .createTable('files')
      .addColumn('file_id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('size', 'bigint', (c) => c.notNull())
      .addColumn('piece_size', 'integer', (c) => c.notNull())
      .addColumn('piece_count', 'integer', (c) => c.notNull())
      .addColumn('manifest', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createTable('group_files')
      .addColumn('group_id', 'varchar(64)', (c) =>
        c.notNull().references('groups.group_id').onDelete('cascade'),
      )
      .addColumn('file_id', 'varchar(64)', (c) => c.notNull().references('files.file_id'))
      .addColumn('name', 'varchar(1024)', (c) => c.notNull())
      .addColumn('created_by', 'varchar(64)', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('group_files_pk', ['group_id', 'file_id'])
      .addUniqueConstraint('group_files_name', ['group_id', 'name'])
      .execute();
    await db.schema
      .createTable('shares')
      .addColumn('group_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('file_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('peer_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull().references('users.user_id'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('shares_pk', ['group_id', 'file_id', 'peer_id'])
      .addForeignKeyConstraint(
        'shares_group_file',
        ['group_id', 'file_id'],
        'group_files',
        ['group_id', 'file_id'],
        (c) => c.onDelete('cascade'),
      )
      .execute();
    await db.schema.createIndex('shares_user').on('shares').columns(['user_id', 'group_id']).execute();

    await db.schema
      .createTable('presence')
      .addColumn('peer_id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('session_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('tracker_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('addresses', 'text', (c) => c.notNull())
      .addColumn('connected_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('presence_tracker').on('presence').column('tracker_id').execute();
    await db.schema
      .createTable('presence_files')
      .addColumn('peer_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('file_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('session_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('tracker_id', 'varchar(64)', (c) => c.notNull())
      .addPrimaryKeyConstraint('presence_files_pk', ['peer_id', 'file_id'])
      .execute();
    await db.schema.createIndex('presence_files_file').on('presence_files').column('file_id').execute();
    await db.schema.createIndex('presence_files_tracker').on('presence_files').column('tracker_id').execute();

    await db.schema
      .createTable('peer_scores')
      .addColumn('peer_id', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('score', 'double precision', (c) => c.notNull())
      .addColumn('corrupt', 'double precision', (c) => c.notNull())
      .addColumn('reports', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('cluster_keys')
      .addColumn('kid', 'varchar(128)', (c) => c.primaryKey())
      .addColumn('private_jwk', 'text', (c) => c.notNull())
      .addColumn('public_jwk', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
  },
  async down(db: AnyDb) {
    for (const t of [
      'cluster_keys',
      'peer_scores',
      'presence_files',
      'presence',
      'shares',
      'group_files',
      'files',
      'join_requests',
      'memberships',
      'groups',
      'sessions',
      'users',
    ]) {
      await db.schema.dropTable(t).ifExists().execute();
    }
  },
};

/**
 * Messages and topics: one model for direct conversations, group channels and
 * topics. A stream numbers its messages (seq, from 1, no gaps at insert); a
 * cursor per (stream, reader) says how far the reader's peer acknowledged
 * delivery and how far the reader has read. For topics a cursor row is the
 * subscription itself. Stream ids: `d:<user>:<user>` (sorted), `g:<group>`,
 * `t:<group>:<topic>`.
 */
const m0002_messages: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('streams')
      .addColumn('stream_id', 'varchar(200)', (c) => c.primaryKey())
      .addColumn('kind', 'varchar(16)', (c) => c.notNull())
      .addColumn('group_id', 'varchar(64)')
      .addColumn('topic', 'varchar(64)')
      .addColumn('last_seq', 'bigint', (c) => c.notNull().defaultTo(0))
      .addColumn('retention_count', 'bigint')
      .addColumn('retention_ms', 'bigint')
      .addColumn('created_by', 'varchar(64)', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('streams_group').on('streams').columns(['group_id', 'kind']).execute();
    await db.schema
      .createTable('messages')
      .addColumn('stream_id', 'varchar(200)', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('message_id', 'varchar(64)', (c) => c.notNull().unique())
      .addColumn('sender', 'varchar(64)', (c) => c.notNull())
      .addColumn('client_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('messages_pk', ['stream_id', 'seq'])
      .addUniqueConstraint('messages_sender_client', ['sender', 'client_id'])
      .execute();
    await db.schema
      .createTable('cursors')
      .addColumn('stream_id', 'varchar(200)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('delivered_seq', 'bigint', (c) => c.notNull())
      .addColumn('read_seq', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('cursors_pk', ['stream_id', 'user_id'])
      .execute();
    await db.schema.createIndex('cursors_user').on('cursors').column('user_id').execute();
  },
  async down(db: AnyDb) {
    for (const t of ['cursors', 'messages', 'streams']) await db.schema.dropTable(t).ifExists().execute();
  },
};

/**
 * Ticket revocations (issue 14): one row per user and group, the latest
 * removal or leave. Seeders that missed the live event learn the rows of the
 * last hour (the longest ticket lifetime) when their session says hello.
 */
const m0013_ticket_revocations: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('ticket_revocations')
      .addColumn('group_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('user_id', 'varchar(64)', (c) => c.notNull())
      .addColumn('before_s', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('ticket_revocations_pk', ['group_id', 'user_id'])
      .execute();
    await db.schema
      .createIndex('ticket_revocations_before')
      .on('ticket_revocations')
      .column('before_s')
      .execute();
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('ticket_revocations').ifExists().execute();
  },
};

/** Ordered by name: Kysely applies them in that order. */
export const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': m0001_initial,
  '0002_messages': m0002_messages,
  '0010_cluster': m0010_cluster,
  '0011_login_failures': m0011_login_failures,
  '0013_ticket_revocations': m0013_ticket_revocations,
  '0014_file_versions': m0014_file_versions,
  '0015_storage': m0015_storage,
  '0016_tracker_relay': m0016_tracker_relay,
  '0017_replica_backoffs': m0017_replica_backoffs,
  '0018_manifest_pages': m0018_manifest_pages,
  '0019_replica_progress': m0019_replica_progress,
  '0020_page_refs': m0020_page_refs,
};

export const migrationProvider: MigrationProvider = {
  async getMigrations() {
    return MIGRATIONS;
  },
};
