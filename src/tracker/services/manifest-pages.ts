import type { Kysely, Transaction } from 'kysely';
import { CoterieError } from '../../protocol/errors.js';
import { computeFileId, validateManifest } from '../../protocol/manifest.js';
import {
  assembleManifest,
  type ManifestPage,
  pageHash,
  rootFileId,
  validatePage,
  validateRoot,
} from '../../protocol/manifest-pages.js';
import type { Database } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import type { GroupsService } from './groups.js';

/** A shared manifest as checked by the tracker: what the files row keeps. */
export interface CheckedManifest {
  fileId: string;
  size: number;
  pieceSize: number;
  pieceCount: number;
  /** The tracker's own JSON of it: a single file's whole manifest, or a folder's root. */
  json: string;
  /** A folder's page hashes (none for a single file): the file's references (attachPages). */
  pages: string[];
}

/** Pages read per statement (bounds the bound variables on SQLite and PostgreSQL). */
const PAGES_PER_READ = 200;

/**
 * The manifest of a share or update request: a single file's is checked
 * whole; a folder's root is checked, its pages are read from the store
 * (uploaded first, one by one) and the whole tree is checked as one
 * (paths in order across pages, sizes against pieces) before it is listed.
 */
export async function checkSharedManifest(db: Kysely<Database>, value: unknown): Promise<CheckedManifest> {
  if ((value as { version?: unknown } | null)?.version !== 2) {
    const m = validateManifest(value);
    if (m.files !== undefined)
      throw new CoterieError('INVALID_MANIFEST', 'invalid manifest: a folder is sent in pages');
    return {
      fileId: computeFileId(m),
      size: m.size,
      pieceSize: m.pieceSize,
      pieceCount: m.pieces.length,
      json: JSON.stringify(m),
      pages: [],
    };
  }
  const root = validateRoot(value);
  const hashes = [...new Set([...root.filePages, ...root.piecePages])];
  const pages = new Map<string, ManifestPage>();
  for (let i = 0; i < hashes.length; i += PAGES_PER_READ) {
    const rows = await db
      .selectFrom('manifest_pages')
      .select(['hash', 'body'])
      .where('hash', 'in', hashes.slice(i, i + PAGES_PER_READ))
      .execute();
    for (const r of rows) pages.set(r.hash, JSON.parse(r.body) as ManifestPage);
  }
  assembleManifest(root, (hash) => pages.get(hash));
  return {
    fileId: rootFileId(root),
    size: root.size,
    pieceSize: root.pieceSize,
    pieceCount: root.pieceCount,
    json: JSON.stringify(root),
    pages: hashes,
  };
}

/**
 * Records that `fileId`'s manifest refers to these pages, in the transaction
 * that lists the file (services/file-gc.ts removes a page only when no file
 * refers to it). The pages were read before the transaction began: one the
 * GC's sweep of unreferenced pages removed since is refused here, with the
 * same error as a page never uploaded, and the sharer uploads again.
 */
export async function attachPages(
  trx: Transaction<Database>,
  fileId: string,
  hashes: string[],
): Promise<void> {
  for (let i = 0; i < hashes.length; i += PAGES_PER_READ) {
    const slice = hashes.slice(i, i + PAGES_PER_READ);
    // Only pages still there (the foreign key refuses one removed after this read, on PostgreSQL).
    const present = await trx
      .selectFrom('manifest_pages')
      .select('hash')
      .where('hash', 'in', slice)
      .execute();
    if (present.length !== slice.length) {
      throw new CoterieError(
        'INVALID_MANIFEST',
        'invalid manifest: a page of it is no longer on the tracker (it was removed as unused): share it again',
      );
    }
    await trx
      .insertInto('manifest_page_refs')
      .values(slice.map((hash) => ({ file_id: fileId, hash })))
      .onConflict((oc) => oc.columns(['file_id', 'hash']).doNothing())
      .execute();
  }
}

export interface ManifestPagesService {
  /** Keeps one page of a folder's manifest; its hash. */
  put(userId: string, groupId: string, body: unknown): Promise<{ hash: string }>;
  /** A page as JSON text (the tracker's own encoding of a checked page). */
  getJson(userId: string, groupId: string, hash: string): Promise<string>;
}

export function createManifestPagesService() {
  return (deps: ServiceDeps & { groups: GroupsService }): ManifestPagesService => {
    const { store, now, groups } = deps;
    return {
      async put(userId, groupId, body) {
        await groups.requireMember(userId, groupId);
        const page = validatePage(body);
        const hash = pageHash(page);
        // A page uploaded again is young again: an upload under way keeps its pages from the sweep
        // of pages no file refers to (file-gc.ts), however old their first upload.
        const t = now();
        await store.db
          .insertInto('manifest_pages')
          .values({ hash, body: JSON.stringify(page), created_at: t })
          .onConflict((oc) => oc.column('hash').doUpdateSet({ created_at: t }))
          .execute();
        return { hash };
      },
      async getJson(userId, groupId, hash) {
        await groups.requireMember(userId, groupId);
        const row = await store.db
          .selectFrom('manifest_pages')
          .select('body')
          .where('hash', '=', hash)
          .executeTakeFirst();
        if (row === undefined)
          throw new CoterieError('FILE_NOT_FOUND', `no manifest page ${hash.slice(0, 12)}… on this tracker`);
        return row.body;
      },
    };
  };
}
