import type Database from 'better-sqlite3';
import type { Manifest } from '../../protocol/manifest.js';
import { type ManifestPages, replicaPages, type StoredManifest } from './manifest-pages.js';
import { camelRow } from './rows.js';

/**
 * A verified replica this storage peer keeps for a group (peer.db's replicas
 * table). Its manifest is kept too, so serving and scrubbing restart without
 * asking the tracker, but read apart (manifest()): a folder's is in pages.
 */
export interface ReplicaRecord {
  groupId: string;
  fileId: string;
  path: string;
  size: number;
  heldAt: number;
}

/** This peer's storage offer to a group, as it made it (the quota its replicas must fit in). */
export interface StorageOfferRecord {
  groupId: string;
  quotaBytes: number;
  zone: string;
  offeredAt: number;
}

interface ReplicaRow {
  group_id: string;
  file_id: string;
  path: string;
  size: number;
  held_at: number;
}

/** The record's columns: every reader but manifest() leaves manifest_json (a folder's root) alone. */
const RECORD_COLUMNS = 'group_id, file_id, path, size, held_at';

const replicaFromRow = (r: ReplicaRow): ReplicaRecord => camelRow(r);

export class ReplicaRepository {
  private readonly pages: ManifestPages;

  constructor(private readonly db: Database.Database) {
    this.pages = replicaPages(db);
  }

  /** Keeps a replica and its manifest (a folder's in pages), in one transaction. */
  put(r: ReplicaRecord, manifest: Manifest): void {
    this.db.transaction(() => {
      const manifestJson = this.pages.write([r.groupId, r.fileId], manifest);
      this.db
        .prepare(
          `INSERT INTO replicas (group_id, file_id, path, size, manifest_json, held_at)
           VALUES (@groupId, @fileId, @path, @size, @manifestJson, @heldAt)
           ON CONFLICT(group_id, file_id) DO UPDATE SET path = excluded.path, size = excluded.size,
             manifest_json = excluded.manifest_json, held_at = excluded.held_at`,
        )
        .run({ ...r, manifestJson });
    })();
  }

  get(groupId: string, fileId: string): ReplicaRecord | undefined {
    const row = this.db
      .prepare(`SELECT ${RECORD_COLUMNS} FROM replicas WHERE group_id = ? AND file_id = ?`)
      .get(groupId, fileId) as ReplicaRow | undefined;
    return row === undefined ? undefined : replicaFromRow(row);
  }

  /** A held replica's manifest, whose pages are read as they are asked for; undefined when not held. */
  manifest(groupId: string, fileId: string): StoredManifest | undefined {
    return this.pages.read([groupId, fileId]);
  }

  /** Whether a replica is held, without reading its manifest (a folder's can be large). */
  has(groupId: string, fileId: string): boolean {
    return (
      this.db.prepare('SELECT 1 FROM replicas WHERE group_id = ? AND file_id = ?').get(groupId, fileId) !==
      undefined
    );
  }

  list(): ReplicaRecord[] {
    return (
      this.db
        .prepare(`SELECT ${RECORD_COLUMNS} FROM replicas ORDER BY group_id, file_id`)
        .all() as ReplicaRow[]
    ).map(replicaFromRow);
  }

  /** Forgets a replica and its manifest pages, in one transaction. */
  remove(groupId: string, fileId: string): void {
    this.db.transaction(() => {
      this.pages.delete([groupId, fileId]);
      this.db.prepare('DELETE FROM replicas WHERE group_id = ? AND file_id = ?').run(groupId, fileId);
    })();
  }

  putOffer(o: StorageOfferRecord): void {
    this.db
      .prepare(
        `INSERT INTO storage_offers (group_id, quota_bytes, zone, offered_at)
         VALUES (@groupId, @quotaBytes, @zone, @offeredAt)
         ON CONFLICT(group_id) DO UPDATE SET quota_bytes = excluded.quota_bytes, zone = excluded.zone,
           offered_at = excluded.offered_at`,
      )
      .run(o);
  }

  offer(groupId: string): StorageOfferRecord | undefined {
    return this.offers().find((o) => o.groupId === groupId);
  }

  offers(): StorageOfferRecord[] {
    return (
      this.db.prepare('SELECT * FROM storage_offers ORDER BY group_id').all() as {
        group_id: string;
        quota_bytes: number;
        zone: string;
        offered_at: number;
      }[]
    ).map(camelRow);
  }

  removeOffer(groupId: string): void {
    this.db.prepare('DELETE FROM storage_offers WHERE group_id = ?').run(groupId);
  }
}
