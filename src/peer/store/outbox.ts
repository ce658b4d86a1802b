import type Database from 'better-sqlite3';

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

interface OutboxRow {
  message_id: string | null;
  client_id: string;
  stream_id: string;
  seq: number | null;
  recipient: string | null;
  group_id: string | null;
  topic: string | null;
  body: string;
  state: 'pending' | 'sent';
  created_at: number;
}

const outboxFromRow = (r: OutboxRow): OutboxRecord => ({
  messageId: r.message_id,
  clientId: r.client_id,
  streamId: r.stream_id,
  seq: r.seq,
  to: r.recipient,
  groupId: r.group_id,
  topic: r.topic,
  body: r.body,
  state: r.state,
  createdAt: r.created_at,
});

/**
 * What this peer sent, per logged-in user: sends waiting for a tracker's
 * answer (peer.db's outbox) and the receipts of its messages (receipts).
 */
export class OutboxRepository {
  /** `owner` says whose messages these tables show and take: the logged-in user's. */
  constructor(
    private readonly db: Database.Database,
    private readonly owner: () => string,
  ) {}

  put(r: OutboxRecord): void {
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
  pending(): OutboxRecord[] {
    return (
      this.db
        .prepare("SELECT * FROM outbox WHERE owner = ? AND state = 'pending' ORDER BY created_at")
        .all(this.owner()) as OutboxRow[]
    ).map(outboxFromRow);
  }

  /** Direct and group messages sent (topics left out), newest first; only these streams when given. */
  sent(o: { streamIds?: string[]; limit: number }): OutboxRecord[] {
    const streams =
      o.streamIds === undefined ? '' : ` AND stream_id IN (${o.streamIds.map(() => '?').join(', ')})`;
    return (
      this.db
        .prepare(
          `SELECT * FROM outbox WHERE owner = ? AND topic IS NULL${streams} ORDER BY created_at DESC, client_id DESC LIMIT ?`,
        )
        .all(this.owner(), ...(o.streamIds ?? []), o.limit) as OutboxRow[]
    ).map(outboxFromRow);
  }

  /** How far each reader of these streams got (their receipts). */
  receipts(streamIds: string[]): { streamId: string; reader: string; delivered: number; read: number }[] {
    if (streamIds.length === 0) return [];
    return this.db
      .prepare(
        `SELECT stream_id AS streamId, reader, delivered, read FROM receipts
         WHERE owner = ? AND stream_id IN (${streamIds.map(() => '?').join(', ')})`,
      )
      .all(this.owner(), ...streamIds) as {
      streamId: string;
      reader: string;
      delivered: number;
      read: number;
    }[];
  }

  remove(clientId: string): void {
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
