import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: Kysely's migration signature: migrations must not depend on today's schema type
type AnyDb = Kysely<any>;

/**
 * Relays (issue 19): each tracker's heartbeat row says where its built-in
 * relay listens (`host:port`; null with --no-relay), so GET /v1/cluster lists
 * the relays of every live tracker of a cluster. Portable SQL.
 */
export const m0016_tracker_relay: Migration = {
  async up(db: AnyDb) {
    await db.schema.alterTable('trackers').addColumn('relay', 'varchar(300)').execute();
  },
  async down(db: AnyDb) {
    await db.schema.alterTable('trackers').dropColumn('relay').execute();
  },
};
