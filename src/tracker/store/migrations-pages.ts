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

/** Page references written per statement while 0020 fills the table (bounds bound variables). */
const REFS_PER_INSERT = 300;
/** Files read per batch while 0020 fills the table (bounds memory on a large store). */
const FILES_PER_READ = 500;

/**
 * Garbage collection of files and manifest pages (services/file-gc.ts):
 *
 * - `manifest_page_refs`: one row per (file, page) of a folder's manifest.
 *   Pages are content-addressed and shared by every tree with the same
 *   subtree, so a page goes only when no file refers to it. Both columns are
 *   foreign keys: a reference to a page the sweep just removed fails rather
 *   than leaving a file whose manifest cannot be put together.
 * - `files.unlisted_at`: when the sweep first found the file listed in no
 *   group (null while listed, and set back to null by every share or update
 *   that lists it again); its rows go a grace after that.
 * - `group_files (file_id)`: "is this file listed anywhere" by file id alone.
 *
 * The references of the files already in the store are filled in here, from
 * each folder root's page lists, so that a store upgraded from 0019 does not
 * lose the pages of live files to the sweep of pages nobody refers to.
 * Portable SQL.
 */
export const m0020_page_refs: Migration = {
  async up(db: AnyDb) {
    // Kysely runs PostgreSQL's migrations in a transaction but not SQLite's: the fill must be all or nothing.
    if (db.isTransaction) await addPageRefs(db);
    else await db.transaction().execute(addPageRefs);
  },
  async down(db: AnyDb) {
    await db.schema.dropTable('manifest_page_refs').ifExists().execute();
    await db.schema.dropIndex('group_files_file').ifExists().execute();
    await db.schema.dropIndex('files_unlisted').ifExists().execute();
    await db.schema.alterTable('files').dropColumn('unlisted_at').execute();
  },
};

async function addPageRefs(db: AnyDb) {
  await db.schema.alterTable('files').addColumn('unlisted_at', 'bigint').execute();
  await db.schema.createIndex('files_unlisted').on('files').column('unlisted_at').execute();
  await db.schema.createIndex('group_files_file').on('group_files').column('file_id').execute();
  await db.schema
    .createTable('manifest_page_refs')
    .addColumn('file_id', 'varchar(64)', (c) => c.notNull().references('files.file_id').onDelete('cascade'))
    .addColumn('hash', 'varchar(64)', (c) => c.notNull().references('manifest_pages.hash'))
    .addPrimaryKeyConstraint('manifest_page_refs_pk', ['file_id', 'hash'])
    .execute();
  await db.schema.createIndex('manifest_page_refs_hash').on('manifest_page_refs').column('hash').execute();
  // Keyset over file ids: every file once, a bounded batch at a time.
  let after = '';
  for (;;) {
    const files: { file_id: string; manifest: string }[] = await db
      .selectFrom('files')
      .select(['file_id', 'manifest'])
      .where('file_id', '>', after)
      .orderBy('file_id')
      .limit(FILES_PER_READ)
      .execute();
    if (files.length === 0) break;
    after = files[files.length - 1]!.file_id;
    const refs: { file_id: string; hash: string }[] = [];
    for (const f of files)
      for (const hash of pageHashesOf(f.manifest)) refs.push({ file_id: f.file_id, hash });
    for (let i = 0; i < refs.length; i += REFS_PER_INSERT) {
      const slice = refs.slice(i, i + REFS_PER_INSERT);
      // Only pages the store has: a root whose page is missing was never downloadable, and a
      // reference to nothing would break the foreign key.
      const present = new Set(
        (
          await db
            .selectFrom('manifest_pages')
            .select('hash')
            .where('hash', 'in', [...new Set(slice.map((r) => r.hash))])
            .execute()
        ).map((r: { hash: string }) => r.hash),
      );
      const kept = slice.filter((r) => present.has(r.hash));
      if (kept.length > 0) await db.insertInto('manifest_page_refs').values(kept).execute();
    }
  }
}

/**
 * The page hashes a stored manifest refers to: a folder's root (version 2)
 * lists them in `filePages` and `piecePages`; a single file's manifest has none.
 * Read leniently: the stored JSON was validated when it was shared.
 */
export function pageHashesOf(manifestJson: string): string[] {
  let root: { version?: unknown; filePages?: unknown; piecePages?: unknown };
  try {
    root = JSON.parse(manifestJson) as typeof root;
  } catch {
    return [];
  }
  if (root === null || typeof root !== 'object' || root.version !== 2) return [];
  const hashes = [root.filePages, root.piecePages].flatMap((l) => (Array.isArray(l) ? l : []));
  return [...new Set(hashes.filter((h): h is string => typeof h === 'string'))];
}
