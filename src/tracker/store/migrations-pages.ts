import type { Kysely, Migration } from 'kysely';

// biome-ignore lint/suspicious/noExplicitAny: Kysely's migration signature: migrations must not depend on today's schema type
type AnyDb = Kysely<any>;

/**
 * Folder manifests in pages (issue 17): each page of a tree's manifest is
 * kept once, by the SHA-256 of its encoding (protocol/manifest-pages.ts), as
 * the tracker's own JSON of the validated page; a tree's `files.manifest` is
 * its small root. Portable SQL.
 */
export const m0018_manifest_pages: Migration = {
  async up(db: AnyDb) {
    await db.schema
      .createTable('manifest_pages')
      .addColumn('hash', 'varchar(64)', (c) => c.primaryKey())
      .addColumn('body', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('manifest_pages').execute();
  },
};
