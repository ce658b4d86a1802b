import type Database from 'better-sqlite3';
import type { Manifest } from '../../protocol/manifest.js';
import { type ManifestPages, type StoredManifest, sharePages } from './manifest-pages.js';
import { camelRow } from './rows.js';

/**
 * What this peer shares, in peer.db's shares table: one row per version of a
 * name it seeds. The manifest is kept too, so that seeding restarts without
 * hashing again, but read apart (manifest()): a folder's is in pages
 * (schema 9), so listing the shares never reads a 100,000-file tree.
 */
export interface ShareRecord {
  groupId: string;
  fileName: string;
  fileId: string;
  /** The name's version this content is (null: shared before the peer recorded versions). */
  version: number | null;
  path: string;
  size: number;
  createdAt: number;
}

interface ShareRow {
  group_id: string;
  file_name: string;
  file_id: string;
  version: number | null;
  path: string;
  size: number;
  created_at: number;
}

/** The record's columns: every reader but manifest() leaves manifest_json (a folder's root) alone. */
const RECORD_COLUMNS = 'group_id, file_name, file_id, version, path, size, created_at';

const shareFromRow = (r: ShareRow): ShareRecord => camelRow(r);
const keyOf = (r: ShareRow): string[] => [r.group_id, r.file_name, r.file_id];

export class ShareRepository {
  private readonly pages: ManifestPages;

  constructor(private readonly db: Database.Database) {
    this.pages = sharePages(db);
  }

  /** Keeps a share and its manifest (a folder's in pages), in one transaction. */
  put(s: ShareRecord, manifest: Manifest): void {
    this.db.transaction(() => {
      const manifestJson = this.pages.write([s.groupId, s.fileName, s.fileId], manifest);
      this.db
        .prepare(
          `INSERT INTO shares (group_id, file_name, file_id, version, path, size, manifest_json, created_at)
           VALUES (@groupId, @fileName, @fileId, @version, @path, @size, @manifestJson, @createdAt)
           ON CONFLICT(group_id, file_name, file_id) DO UPDATE SET version = excluded.version,
             path = excluded.path, size = excluded.size, manifest_json = excluded.manifest_json,
             created_at = excluded.created_at`,
        )
        .run({ ...s, manifestJson });
    })();
  }

  /** A share's manifest, whose pages are read as they are asked for; undefined when not shared. */
  manifest(s: Pick<ShareRecord, 'groupId' | 'fileName' | 'fileId'>): StoredManifest | undefined {
    return this.pages.read([s.groupId, s.fileName, s.fileId]);
  }

  list(): ShareRecord[] {
    return (
      this.db
        .prepare(`SELECT ${RECORD_COLUMNS} FROM shares ORDER BY group_id, file_name, version`)
        .all() as ShareRow[]
    ).map(shareFromRow);
  }

  /** Removes shares by group and name, or by name in every group; returns what it removed. */
  remove(fileName: string, groupId?: string): ShareRecord[] {
    const select = `SELECT ${RECORD_COLUMNS} FROM shares WHERE file_name = ?`;
    return this.db.transaction(() => {
      const rows = (
        groupId === undefined
          ? this.db.prepare(select).all(fileName)
          : this.db.prepare(`${select} AND group_id = ?`).all(fileName, groupId)
      ) as ShareRow[];
      this.drop(rows);
      return rows.map(shareFromRow);
    })();
  }

  /**
   * Removes a group's shares of these file ids (versions deleted or dropped), those made before
   * `before` when given; returns what it removed.
   */
  removeFiles(groupId: string, fileIds: readonly string[], before = Number.MAX_SAFE_INTEGER): ShareRecord[] {
    const select = this.db.prepare(
      `SELECT ${RECORD_COLUMNS} FROM shares WHERE group_id = ? AND file_id = ? AND created_at < ?`,
    );
    return this.db.transaction(() =>
      fileIds.flatMap((fileId) => {
        const rows = select.all(groupId, fileId, before) as ShareRow[];
        this.drop(rows);
        return rows.map(shareFromRow);
      }),
    )();
  }

  /** Deletes these share rows and their manifest pages (inside the caller's transaction). */
  private drop(rows: readonly ShareRow[]): void {
    const del = this.db.prepare('DELETE FROM shares WHERE group_id = ? AND file_name = ? AND file_id = ?');
    for (const r of rows) {
      this.pages.delete(keyOf(r));
      del.run(...keyOf(r));
    }
  }
}
