import type Database from 'better-sqlite3';
import { camelRow } from './rows.js';

/**
 * What this peer shares, in peer.db's shares table: one row per version of a
 * name it seeds. The manifest is kept so that seeding restarts without
 * hashing again.
 */
export interface ShareRecord {
  groupId: string;
  fileName: string;
  fileId: string;
  /** The name's version this content is (null: shared before the peer recorded versions). */
  version: number | null;
  path: string;
  size: number;
  /** The manifest as JSON, so seeding restarts without hashing again. */
  manifestJson: string;
  createdAt: number;
}

interface ShareRow {
  group_id: string;
  file_name: string;
  file_id: string;
  version: number | null;
  path: string;
  size: number;
  manifest_json: string;
  created_at: number;
}

const shareFromRow = (r: ShareRow): ShareRecord => camelRow(r);

export class ShareRepository {
  constructor(private readonly db: Database.Database) {}

  put(s: ShareRecord): void {
    this.db
      .prepare(
        `INSERT INTO shares (group_id, file_name, file_id, version, path, size, manifest_json, created_at)
         VALUES (@groupId, @fileName, @fileId, @version, @path, @size, @manifestJson, @createdAt)
         ON CONFLICT(group_id, file_name, file_id) DO UPDATE SET version = excluded.version,
           path = excluded.path, size = excluded.size, manifest_json = excluded.manifest_json,
           created_at = excluded.created_at`,
      )
      .run(s);
  }

  list(): ShareRecord[] {
    return (
      this.db.prepare('SELECT * FROM shares ORDER BY group_id, file_name, version').all() as ShareRow[]
    ).map(shareFromRow);
  }

  /** Removes shares by group and name, or by name in every group; returns what it removed. */
  remove(fileName: string, groupId?: string): ShareRecord[] {
    const rows = (
      groupId === undefined
        ? this.db.prepare('SELECT * FROM shares WHERE file_name = ?').all(fileName)
        : this.db.prepare('SELECT * FROM shares WHERE file_name = ? AND group_id = ?').all(fileName, groupId)
    ) as ShareRow[];
    const del = this.db.prepare('DELETE FROM shares WHERE group_id = ? AND file_name = ?');
    for (const r of rows) del.run(r.group_id, r.file_name);
    return rows.map(shareFromRow);
  }

  /**
   * Removes a group's shares of these file ids (versions deleted or dropped), those made before
   * `before` when given; returns what it removed.
   */
  removeFiles(groupId: string, fileIds: readonly string[], before = Number.MAX_SAFE_INTEGER): ShareRecord[] {
    const where = 'WHERE group_id = ? AND file_id = ? AND created_at < ?';
    const select = this.db.prepare(`SELECT * FROM shares ${where}`);
    const del = this.db.prepare(`DELETE FROM shares ${where}`);
    return this.db.transaction(() =>
      fileIds.flatMap((fileId) => {
        const rows = select.all(groupId, fileId, before) as ShareRow[];
        del.run(groupId, fileId, before);
        return rows.map(shareFromRow);
      }),
    )();
  }
}
