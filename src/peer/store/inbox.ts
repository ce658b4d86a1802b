import type Database from 'better-sqlite3';
import type { InboxMessage } from '../../protocol/control.js';
import { countInbox, type InboxFilter, selectInbox } from './inbox-query.js';

export type { InboxMessage } from '../../protocol/control.js';

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

/** The messages this peer received, per logged-in user (peer.db's inbox table). */
export class InboxRepository {
  /** `owner` says whose messages these tables show and take: the logged-in user's. */
  constructor(
    private readonly db: Database.Database,
    private readonly owner: () => string,
  ) {}

  /**
   * Stores what arrived, once per message id; returns the messages that were
   * new (a retried send or a replayed catch-up is stored and shown once).
   */
  add(messages: readonly Omit<InboxMessage, 'receivedAt' | 'readAt'>[], at: number): InboxMessage[] {
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
  list(filter: InboxFilter & { limit: number; oldestFirst?: boolean }): InboxMessage[] {
    return (selectInbox(this.db, this.owner(), filter) as InboxRow[]).map(inboxFromRow);
  }

  count(filter: InboxFilter): number {
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

  /**
   * Marks `messageId` and the earlier unread messages of its stream read (the tracker's read cursor
   * is per stream: reading a message reads what came before it). Returns the stream and seq, or
   * undefined when this user has no such message.
   */
  markReadUpTo(messageId: string, at: number): { streamId: string; seq: number } | undefined {
    const owner = this.owner();
    const row = this.db
      .prepare('SELECT stream_id AS streamId, seq FROM inbox WHERE owner = ? AND message_id = ?')
      .get(owner, messageId) as { streamId: string; seq: number } | undefined;
    if (row === undefined) return undefined;
    this.db
      .prepare(
        'UPDATE inbox SET read_at = ? WHERE owner = ? AND stream_id = ? AND seq <= ? AND read_at IS NULL',
      )
      .run(at, owner, row.streamId, row.seq);
    return row;
  }

  /** Per stream: the highest sequence stored and the highest read (what the tracker's cursors should say). */
  cursors(): { streamId: string; delivered: number; read: number }[] {
    return this.db
      .prepare(
        `SELECT stream_id AS streamId, MAX(seq) AS delivered,
             COALESCE(MAX(CASE WHEN read_at IS NOT NULL THEN seq END), 0) AS read
           FROM inbox WHERE owner = ? GROUP BY stream_id`,
      )
      .all(this.owner()) as { streamId: string; delivered: number; read: number }[];
  }
}
