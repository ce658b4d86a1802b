import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ensurePrivateFile, narrowExistingFiles } from '../../os/private-files.js';
import { CoterieError } from '../../protocol/errors.js';
import { countInbox, type InboxFilter, selectInbox } from './inbox-query.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.js';
import { type SavedSession, SavedSessionSlot } from './secrets.js';

export type { SavedSession } from './secrets.js';

/**
 * The peer's own durable state in DIR/peer.db: the saved tracker session (so
 * a restart stays logged in until `logout`), what it shares, and its
 * downloads (so they resume after a restart). The tracker never sees this.
 */
export interface ShareRecord {
  groupId: string;
  fileName: string;
  fileId: string;
  path: string;
  size: number;
  /** The manifest as JSON, so seeding restarts without hashing again. */
  manifestJson: string;
  createdAt: number;
}

export type DownloadState = 'active' | 'paused' | 'completed' | 'failed';

export interface DownloadRecord {
  id: number;
  groupId: string;
  fileName: string;
  fileId: string;
  dest: string;
  size: number;
  state: DownloadState;
  error: string | null;
  doneBytes: number;
  startedAt: number;
  endedAt: number | null;
  /** Owner of the download (the user logged in when it started). */
  userId: string;
}

interface ShareRow {
  group_id: string;
  file_name: string;
  file_id: string;
  path: string;
  size: number;
  manifest_json: string;
  created_at: number;
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

const shareFromRow = (r: ShareRow): ShareRecord => ({
  groupId: r.group_id,
  fileName: r.file_name,
  fileId: r.file_id,
  path: r.path,
  size: r.size,
  manifestJson: r.manifest_json,
  createdAt: r.created_at,
});

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

/** A received message as stored and shown. */
export interface InboxMessage {
  messageId: string;
  streamId: string;
  seq: number;
  kind: 'direct' | 'group' | 'topic';
  sender: string;
  to: string | null;
  groupId: string | null;
  topic: string | null;
  body: string;
  sentAt: number;
  receivedAt: number;
  readAt: number | null;
}

export interface OutboxRecord {
  /** Known once the tracker stored the message. */
  messageId: string | null;
  clientId: string;
  streamId: string;
  seq: number | null;
  to: string | null;
  groupId: string | null;
  topic: string | null;
  body: string;
  state: 'pending' | 'sent';
  createdAt: number;
}

interface InboxRow {
  message_id: string;
  stream_id: string;
  seq: number;
  kind: InboxMessage['kind'];
  sender: string;
  recipient: string | null;
  group_id: string | null;
  topic: string | null;
  body: string;
  sent_at: number;
  received_at: number;
  read_at: number | null;
}

const inboxFromRow = (r: InboxRow): InboxMessage => ({
  messageId: r.message_id,
  streamId: r.stream_id,
  seq: r.seq,
  kind: r.kind,
  sender: r.sender,
  to: r.recipient,
  groupId: r.group_id,
  topic: r.topic,
  body: r.body,
  sentAt: r.sent_at,
  receivedAt: r.received_at,
  readAt: r.read_at,
});

export class PeerStore {
  private readonly db: Database.Database;
  private readonly session: SavedSessionSlot;

  constructor(dataDir: string) {
    const path = join(dataDir, 'peer.db');
    let db: Database.Database | undefined;
    try {
      // 0600 before SQLite opens it: its -wal and -shm files take the database's mode.
      ensurePrivateFile(path);
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      narrowExistingFiles([`${path}-wal`, `${path}-shm`]);
      this.db = db;
      this.migrate(path);
      this.session = new SavedSessionSlot(dataDir, {
        read: () => this.getMeta('session'),
        write: (value) => this.setMeta('session', value),
      });
    } catch (err) {
      db?.close();
      // A damaged or foreign file (SQLITE_NOTADB, SQLITE_CORRUPT): say which and what to do.
      throw CoterieError.from(
        err,
        'PATH_INVALID',
        (text) =>
          `cannot open ${path}: ${text}; move it away to start with an empty one (this peer then forgets its shares, downloads, login and local messages; its identity stays)`,
      );
    }
  }

  private migrate(path: string): void {
    const current = this.db.pragma('user_version', { simple: true }) as number;
    if (current > SCHEMA_VERSION) {
      throw new CoterieError(
        'PATH_INVALID',
        `${path} has schema ${current}, newer than this coterie's (${SCHEMA_VERSION}): run a newer coterie`,
      );
    }
    for (let v = current; v < SCHEMA_VERSION; v++) {
      this.db.transaction(() => {
        this.db.exec(MIGRATIONS[v]!);
        this.db.pragma(`user_version = ${v + 1}`);
      })();
    }
  }

  close(): void {
    this.db.close();
  }

  /** Set when the saved login could not be opened at start (session.key lost or replaced): say so. */
  get sessionNotice(): string | undefined {
    return this.session.notice;
  }

  // -- meta (session, tracker) --------------------------------------------

  getMeta(key: string): string | undefined {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as
      | { value: string }
      | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string | undefined): void {
    if (value === undefined) this.db.prepare('DELETE FROM meta WHERE key = ?').run(key);
    else
      this.db
        .prepare(
          'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
        )
        .run(key, value);
  }

  getSession(): SavedSession | undefined {
    return this.session.get();
  }

  setSession(session: SavedSession | undefined): void {
    this.session.set(session);
  }

  /** Whose messages the message tables show and take: the logged-in user's ('' when nobody is). */
  private owner(): string {
    return this.getSession()?.userId ?? '';
  }

  // -- shares ---------------------------------------------------------------

  putShare(s: ShareRecord): void {
    this.db
      .prepare(
        `INSERT INTO shares (group_id, file_name, file_id, path, size, manifest_json, created_at)
         VALUES (@groupId, @fileName, @fileId, @path, @size, @manifestJson, @createdAt)
         ON CONFLICT(group_id, file_name) DO UPDATE SET file_id = excluded.file_id, path = excluded.path,
           size = excluded.size, manifest_json = excluded.manifest_json, created_at = excluded.created_at`,
      )
      .run(s);
  }

  listShares(): ShareRecord[] {
    return (this.db.prepare('SELECT * FROM shares ORDER BY group_id, file_name').all() as ShareRow[]).map(
      shareFromRow,
    );
  }

  /** Removes shares by group and name, or by name in every group; returns what it removed. */
  removeShares(fileName: string, groupId?: string): ShareRecord[] {
    const rows = (
      groupId === undefined
        ? this.db.prepare('SELECT * FROM shares WHERE file_name = ?').all(fileName)
        : this.db.prepare('SELECT * FROM shares WHERE file_name = ? AND group_id = ?').all(fileName, groupId)
    ) as ShareRow[];
    const del = this.db.prepare('DELETE FROM shares WHERE group_id = ? AND file_name = ?');
    for (const r of rows) del.run(r.group_id, r.file_name);
    return rows.map(shareFromRow);
  }

  // -- downloads ------------------------------------------------------------

  addDownload(d: Omit<DownloadRecord, 'id' | 'error' | 'doneBytes' | 'endedAt' | 'state'>): DownloadRecord {
    const info = this.db
      .prepare(
        `INSERT INTO downloads (user_id, group_id, file_name, file_id, dest, size, state, started_at)
         VALUES (?, ?, ?, ?, ?, ?, 'active', ?)`,
      )
      .run(d.userId, d.groupId, d.fileName, d.fileId, d.dest, d.size, d.startedAt);
    return this.getDownload(Number(info.lastInsertRowid))!;
  }

  getDownload(id: number): DownloadRecord | undefined {
    const row = this.db.prepare('SELECT * FROM downloads WHERE id = ?').get(id) as DownloadRow | undefined;
    return row === undefined ? undefined : downloadFromRow(row);
  }

  listDownloads(): DownloadRecord[] {
    return (this.db.prepare('SELECT * FROM downloads ORDER BY id').all() as DownloadRow[]).map(
      downloadFromRow,
    );
  }

  updateDownload(
    id: number,
    patch: Partial<Pick<DownloadRecord, 'state' | 'error' | 'doneBytes' | 'endedAt'>>,
  ): void {
    const cur = this.getDownload(id);
    if (cur === undefined) return;
    const next = { ...cur, ...patch };
    this.db
      .prepare('UPDATE downloads SET state = ?, error = ?, done_bytes = ?, ended_at = ? WHERE id = ?')
      .run(next.state, next.error, next.doneBytes, next.endedAt, id);
  }

  // -- messages ---------------------------------------------------------------

  /**
   * Stores what arrived, once per message id; returns the messages that were
   * new (a retried send or a replayed catch-up is stored and shown once).
   */
  addToInbox(messages: readonly Omit<InboxMessage, 'receivedAt' | 'readAt'>[], at: number): InboxMessage[] {
    const insert = this.db.prepare(
      `INSERT INTO inbox (owner, message_id, stream_id, seq, kind, sender, recipient, group_id, topic, body, sent_at, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(owner, message_id) DO NOTHING`,
    );
    const owner = this.owner();
    const fresh: InboxMessage[] = [];
    this.db.transaction(() => {
      for (const m of messages) {
        const r = insert.run(
          owner,
          m.messageId,
          m.streamId,
          m.seq,
          m.kind,
          m.sender,
          m.to,
          m.groupId,
          m.topic,
          m.body,
          m.sentAt,
          at,
        );
        if (r.changes > 0) fresh.push({ ...m, receivedAt: at, readAt: null });
      }
    })();
    return fresh;
  }

  /** Messages of some streams (all but topics when none given), oldest first. */
  listInbox(filter: InboxFilter & { limit: number; oldestFirst?: boolean }): InboxMessage[] {
    return (selectInbox(this.db, this.owner(), filter) as InboxRow[]).map(inboxFromRow);
  }

  countInbox(filter: InboxFilter): number {
    return countInbox(this.db, this.owner(), filter);
  }

  markRead(messageIds: readonly string[], at: number): void {
    const upd = this.db.prepare(
      'UPDATE inbox SET read_at = ? WHERE owner = ? AND message_id = ? AND read_at IS NULL',
    );
    const owner = this.owner();
    this.db.transaction(() => {
      for (const id of messageIds) upd.run(at, owner, id);
    })();
  }

  /** Per stream: the highest sequence stored and the highest read (what the tracker's cursors should say). */
  inboxCursors(): { streamId: string; delivered: number; read: number }[] {
    return this.db
      .prepare(
        `SELECT stream_id AS streamId, MAX(seq) AS delivered,
             COALESCE(MAX(CASE WHEN read_at IS NOT NULL THEN seq END), 0) AS read
           FROM inbox WHERE owner = ? GROUP BY stream_id`,
      )
      .all(this.owner()) as { streamId: string; delivered: number; read: number }[];
  }

  putOutbox(r: OutboxRecord): void {
    this.db
      .prepare(
        `INSERT INTO outbox (owner, message_id, client_id, stream_id, seq, recipient, group_id, topic, body, state, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT(owner, client_id) DO UPDATE SET message_id = excluded.message_id, seq = excluded.seq,
           state = excluded.state`,
      )
      .run(
        this.owner(),
        r.messageId,
        r.clientId,
        r.streamId,
        r.seq,
        r.to,
        r.groupId,
        r.topic,
        r.body,
        r.state,
        r.createdAt,
      );
  }

  /** Sends that never got an answer (the tracker was unreachable): resent with the same client id. */
  pendingOutbox(): OutboxRecord[] {
    return (
      this.db
        .prepare("SELECT * FROM outbox WHERE owner = ? AND state = 'pending' ORDER BY created_at")
        .all(this.owner()) as {
        message_id: string | null;
        client_id: string;
        stream_id: string;
        seq: number | null;
        recipient: string | null;
        group_id: string | null;
        topic: string | null;
        body: string;
        created_at: number;
      }[]
    ).map((r) => ({
      messageId: r.message_id,
      clientId: r.client_id,
      streamId: r.stream_id,
      seq: r.seq,
      to: r.recipient,
      groupId: r.group_id,
      topic: r.topic,
      body: r.body,
      state: 'pending' as const,
      createdAt: r.created_at,
    }));
  }

  removeOutbox(clientId: string): void {
    this.db.prepare('DELETE FROM outbox WHERE owner = ? AND client_id = ?').run(this.owner(), clientId);
  }

  /** Receipts only move forward; returns true when this one moved something. */
  putReceipt(streamId: string, reader: string, delivered: number, read: number): boolean {
    const r = this.db
      .prepare(
        `INSERT INTO receipts (owner, stream_id, reader, delivered, read) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(owner, stream_id, reader) DO UPDATE SET delivered = MAX(delivered, excluded.delivered),
           read = MAX(read, excluded.read)
         WHERE excluded.delivered > receipts.delivered OR excluded.read > receipts.read`,
      )
      .run(this.owner(), streamId, reader, delivered, read);
    return r.changes > 0;
  }
}
