import type Database from 'better-sqlite3';

import type { DownloadFields, DownloadState } from '../../protocol/control.js';

export type { DownloadState };

/** This peer's downloads, in peer.db's downloads table, so that they resume after a restart. */
export interface DownloadRecord extends DownloadFields {
  /** Owner of the download (the user logged in when it started). */
  userId: string;
}

interface DownloadRow {
  id: number;
  user_id: string;
  group_id: string;
  file_name: string;
  file_id: string;
  dest: string;
  size: number;
  state: DownloadState;
  error: string | null;
  done_bytes: number;
  started_at: number;
  ended_at: number | null;
}

const downloadFromRow = (r: DownloadRow): DownloadRecord => ({
  id: r.id,
  userId: r.user_id,
  groupId: r.group_id,
  fileName: r.file_name,
  fileId: r.file_id,
  dest: r.dest,
  size: r.size,
  state: r.state,
  error: r.error,
  doneBytes: r.done_bytes,
  startedAt: r.started_at,
  endedAt: r.ended_at,
});

export class DownloadRepository {
  constructor(private readonly db: Database.Database) {}

  add(d: Omit<DownloadRecord, 'id' | 'error' | 'doneBytes' | 'endedAt' | 'state'>): DownloadRecord {
    const info = this.db
      .prepare(
        `INSERT INTO downloads (user_id, group_id, file_name, file_id, dest, size, state, started_at)
         VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`,
      )
      .run(d.userId, d.groupId, d.fileName, d.fileId, d.dest, d.size, d.startedAt);
    return this.get(Number(info.lastInsertRowid))!;
  }

  get(id: number): DownloadRecord | undefined {
    const row = this.db.prepare('SELECT * FROM downloads WHERE id = ?').get(id) as DownloadRow | undefined;
    return row === undefined ? undefined : downloadFromRow(row);
  }

  list(): DownloadRecord[] {
    return (this.db.prepare('SELECT * FROM downloads ORDER BY id').all() as DownloadRow[]).map(
      downloadFromRow,
    );
  }

  update(
    id: number,
    patch: Partial<Pick<DownloadRecord, 'state' | 'error' | 'doneBytes' | 'endedAt' | 'size'>>,
  ): void {
    const cur = this.get(id);
    if (cur === undefined) return;
    const next = { ...cur, ...patch };
    this.db
      .prepare(
        'UPDATE downloads SET state = ?, error = ?, done_bytes = ?, ended_at = ?, size = ? WHERE id = ?',
      )
      .run(next.state, next.error, next.doneBytes, next.endedAt, next.size, id);
  }
}
