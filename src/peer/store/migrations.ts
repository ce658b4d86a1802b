import type Database from 'better-sqlite3';
import { replicaPages, sharePages } from './manifest-pages.js';

/**
 * peer.db's schema, one SQL script per version (PRAGMA user_version counts them). Append only:
 * a released version's script never changes, so every older peer.db migrates the same way.
 */
export const SCHEMA_VERSION = 9;

/** In migration 3: the user of the saved session, else '' (nobody logged in). */
const OWNER_OF_EXISTING_ROWS = `COALESCE((SELECT json_extract(value, '$.userId') FROM meta WHERE key = 'session'), '')`;

export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
   CREATE TABLE shares (
     group_id TEXT NOT NULL, file_name TEXT NOT NULL, file_id TEXT NOT NULL, path TEXT NOT NULL,
     size INTEGER NOT NULL, manifest_json TEXT NOT NULL, created_at INTEGER NOT NULL,
     PRIMARY KEY (group_id, file_name));
   CREATE TABLE downloads (
     id INTEGER PRIMARY KEY AUTOINCREMENT, user_id TEXT NOT NULL, group_id TEXT NOT NULL,
     file_name TEXT NOT NULL, file_id TEXT NOT NULL, dest TEXT NOT NULL, size INTEGER NOT NULL,
     state TEXT NOT NULL, error TEXT, done_bytes INTEGER NOT NULL DEFAULT 0,
     started_at INTEGER NOT NULL, ended_at INTEGER);`,
  // 2: messages. The inbox keeps what arrived (once per message id); the
  // outbox what this user sent, with the client id a retry reuses.
  `CREATE TABLE inbox (
     message_id TEXT PRIMARY KEY, stream_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
     sender TEXT NOT NULL, recipient TEXT, group_id TEXT, topic TEXT, body TEXT NOT NULL,
     sent_at INTEGER NOT NULL, received_at INTEGER NOT NULL, read_at INTEGER);
   CREATE INDEX inbox_stream ON inbox (stream_id, seq);
   CREATE INDEX inbox_unread ON inbox (read_at);
   CREATE TABLE outbox (
     client_id TEXT PRIMARY KEY, message_id TEXT, stream_id TEXT NOT NULL, seq INTEGER,
     recipient TEXT, group_id TEXT, topic TEXT, body TEXT NOT NULL, state TEXT NOT NULL,
     created_at INTEGER NOT NULL);
   CREATE TABLE receipts (
     stream_id TEXT NOT NULL, reader TEXT NOT NULL, delivered INTEGER NOT NULL, read INTEGER NOT NULL,
     PRIMARY KEY (stream_id, reader));`,
  // 3: the message tables belong to the user who was logged in when they were
  // written (owner), so two users taking turns on one data directory never
  // see each other's messages. Existing rows go to the saved session's user.
  `CREATE TABLE inbox3 (
     owner TEXT NOT NULL, message_id TEXT NOT NULL, stream_id TEXT NOT NULL, seq INTEGER NOT NULL,
     kind TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT, group_id TEXT, topic TEXT, body TEXT NOT NULL,
     sent_at INTEGER NOT NULL, received_at INTEGER NOT NULL, read_at INTEGER,
     PRIMARY KEY (owner, message_id));
   INSERT INTO inbox3 SELECT ${OWNER_OF_EXISTING_ROWS}, message_id, stream_id, seq, kind, sender, recipient,
     group_id, topic, body, sent_at, received_at, read_at FROM inbox;
   DROP TABLE inbox;
   ALTER TABLE inbox3 RENAME TO inbox;
   CREATE INDEX inbox_stream ON inbox (owner, stream_id, seq);
   CREATE INDEX inbox_unread ON inbox (owner, read_at);
   CREATE TABLE outbox3 (
     owner TEXT NOT NULL, client_id TEXT NOT NULL, message_id TEXT, stream_id TEXT NOT NULL, seq INTEGER,
     recipient TEXT, group_id TEXT, topic TEXT, body TEXT NOT NULL, state TEXT NOT NULL,
     created_at INTEGER NOT NULL, PRIMARY KEY (owner, client_id));
   INSERT INTO outbox3 SELECT ${OWNER_OF_EXISTING_ROWS}, client_id, message_id, stream_id, seq, recipient,
     group_id, topic, body, state, created_at FROM outbox;
   DROP TABLE outbox;
   ALTER TABLE outbox3 RENAME TO outbox;
   CREATE TABLE receipts3 (
     owner TEXT NOT NULL, stream_id TEXT NOT NULL, reader TEXT NOT NULL, delivered INTEGER NOT NULL,
     read INTEGER NOT NULL, PRIMARY KEY (owner, stream_id, reader));
   INSERT INTO receipts3 SELECT ${OWNER_OF_EXISTING_ROWS}, stream_id, reader, delivered, read FROM receipts;
   DROP TABLE receipts;
   ALTER TABLE receipts3 RENAME TO receipts;`,
  // 4: a name has versions (update_file): a share is one version of a name, so this peer may
  // seed several versions under one name (the one it uploaded, the one it downloaded with
  // --version, the one it updated to); `version` is the tracker's number for it (NULL: shared
  // before versions were recorded).
  `CREATE TABLE shares4 (
     group_id TEXT NOT NULL, file_name TEXT NOT NULL, file_id TEXT NOT NULL, version INTEGER,
     path TEXT NOT NULL, size INTEGER NOT NULL, manifest_json TEXT NOT NULL, created_at INTEGER NOT NULL,
     PRIMARY KEY (group_id, file_name, file_id));
   INSERT INTO shares4 SELECT group_id, file_name, file_id, NULL, path, size, manifest_json, created_at
     FROM shares;
   DROP TABLE shares;
   ALTER TABLE shares4 RENAME TO shares;`,
  // 5: storage peers (issue 16). The replicas this peer keeps verified for its
  // groups (what it reports held after each welcome), and its storage offers
  // (the quota a replicate order must fit in).
  `CREATE TABLE replicas (
     group_id TEXT NOT NULL, file_id TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL,
     manifest_json TEXT NOT NULL, held_at INTEGER NOT NULL, PRIMARY KEY (group_id, file_id));
   CREATE TABLE storage_offers (
     group_id TEXT PRIMARY KEY, quota_bytes INTEGER NOT NULL, zone TEXT NOT NULL, offered_at INTEGER NOT NULL);`,
  // 6: the weekly bandwidth schedule (issue 17): the mode of each 15-minute slot that is not
  // 'full' (slot 0 is Monday 00:00 local time, 671 Sunday 23:45), and the rates of the
  // 'limited' slots (bytes per second, 0 = unlimited).
  `CREATE TABLE schedule_slots (
     slot INTEGER PRIMARY KEY CHECK (slot BETWEEN 0 AND 671),
     mode TEXT NOT NULL CHECK (mode IN ('limited', 'upload-only', 'paused')));
   CREATE TABLE schedule_rates (
     direction TEXT PRIMARY KEY CHECK (direction IN ('upload', 'download')),
     bytes_per_sec INTEGER NOT NULL);`,
  // 7: the bandwidth limits set at run time (set_limits, issue 17), kept across restarts: the
  // daemon's global ones (group_id '') and each group's (bytes per second, 0 = unlimited).
  `CREATE TABLE bandwidth_limits (
     group_id TEXT PRIMARY KEY,
     upload_bytes_per_sec INTEGER NOT NULL CHECK (upload_bytes_per_sec >= 0),
     download_bytes_per_sec INTEGER NOT NULL CHECK (download_bytes_per_sec >= 0));`,
  // 8: a folder replica's manifest in pages (issue 16), as the tracker keeps folder manifests:
  // replicas.manifest_json holds its root, replica_pages each page, numbered in the root's
  // order. The existing rows are cut into pages by CONVERSIONS[8] (hashing takes code).
  `CREATE TABLE replica_pages (
     group_id TEXT NOT NULL, file_id TEXT NOT NULL, page_no INTEGER NOT NULL, body TEXT NOT NULL,
     PRIMARY KEY (group_id, file_id, page_no));`,
  // 9: a folder share's manifest in pages (issue 17), as a replica's (8): shares.manifest_json
  // holds its root, share_pages each page under the share's key. The existing rows are cut
  // into pages by CONVERSIONS[9].
  `CREATE TABLE share_pages (
     group_id TEXT NOT NULL, file_name TEXT NOT NULL, file_id TEXT NOT NULL, page_no INTEGER NOT NULL,
     body TEXT NOT NULL, PRIMARY KEY (group_id, file_name, file_id, page_no));`,
];

/** What a version's SQL cannot do, run after its script in the same transaction (by version). */
export const CONVERSIONS: Readonly<Record<number, (db: Database.Database) => void>> = {
  8: (db) => replicaPages(db).pageExisting(),
  9: (db) => sharePages(db).pageExisting(),
};
