import type { MessageSent, StoredMessage } from '../../../protocol/api.js';
import { CoterieError } from '../../../protocol/errors.js';
import { newTimeOrderedId, type ParsedStream } from '../../../protocol/streams.js';
import { toNumber } from '../../store/index.js';
import type { Directory } from './directory.js';
import { toStoredMessage } from './model.js';
import { appendTo, byKey, type Db, INSERT_CHUNK, INSERT_COLUMNS, powerOfTwoChunks, Q } from './queries.js';

/** A checked send, as the write queue holds it. */
export interface NewMessage {
  sender: string;
  streamId: string;
  stream: ParsedStream;
  clientId: string;
  body: string;
}

/**
 * Stores a batch of sends in one transaction: retried sends (same sender and
 * client id) get their first copy back; new ones get the next seqs of their
 * streams. Returns one result per send, in order, and the messages stored.
 */
export async function writeMessages(
  trx: Db,
  directory: Pick<Directory, 'streamKnown' | 'topicRetention'>,
  sends: readonly NewMessage[],
  at: number,
): Promise<{ results: MessageSent[]; stored: StoredMessage[] }> {
  const results: MessageSent[] = new Array(sends.length);
  const stored: StoredMessage[] = [];
  // 1. retried sends: answer with the first copy, found by (sender, client id)
  const keyOf = (s: NewMessage) => `${s.sender}\n${s.clientId}`;
  // Made once per send: a batch is thousands of them at full rate.
  const keys = sends.map(keyOf);
  const existing = new Map<string, MessageSent>();
  const clientIdsBySender = new Map<string, Set<string>>();
  for (const s of sends) {
    const set = clientIdsBySender.get(s.sender);
    if (set === undefined) clientIdsBySender.set(s.sender, new Set([s.clientId]));
    else set.add(s.clientId);
  }
  for (const [sender, set] of clientIdsBySender) {
    const ids = [...set];
    for (const chunk of powerOfTwoChunks(ids)) {
      const found = (await Q.existing(chunk.length).execute(trx, [sender, ...chunk])).rows;
      for (const r of found) {
        existing.set(`${sender}\n${r.client_id}`, {
          messageId: r.message_id,
          streamId: r.stream_id,
          seq: toNumber(r.seq),
          state: 'sent',
          sentAt: toNumber(r.created_at),
          duplicate: true,
        });
      }
    }
  }
  // 2. new messages, grouped by stream in arrival order
  const byStream = new Map<string, number[]>();
  const firstOfKey = new Map<string, number>();
  sends.forEach((s, i) => {
    const key = keys[i]!;
    if (existing.has(key)) return;
    if (firstOfKey.has(key)) return; // the same id twice in one batch: the first wins
    firstOfKey.set(key, i);
    appendTo(byStream, s.streamId, i);
  });
  /** The new rows' cells, row after row, in INSERT_COLUMNS order: the insert's parameters as they are. */
  const cells: (string | number)[] = [];
  // Streams' rows are locked (bumped) in one order on every tracker: two trackers' batches
  // touching the same streams then wait for each other instead of deadlocking (which
  // PostgreSQL detects only after its deadlock_timeout, a second by default).
  for (const [streamId, idx] of [...byStream].sort(byKey)) {
    const first = sends[idx[0]!]!;
    if (!directory.streamKnown(streamId)) await ensureStream(trx, streamId, first.stream, first.sender, at);
    const updated = (await Q.bumpSeq.execute(trx, [idx.length, streamId])).rows[0];
    if (updated === undefined) throw new CoterieError('INTERNAL', `stream ${streamId} is missing`);
    const last = toNumber(updated.last_seq);
    idx.forEach((i, k) => {
      const s = sends[i]!;
      const seq = last - idx.length + 1 + k;
      const messageId = newTimeOrderedId(at);
      cells.push(streamId, seq, messageId, s.sender, s.clientId, s.body, at);
      results[i] = { messageId, streamId, seq, state: 'sent', sentAt: at, duplicate: false };
      stored.push(
        toStoredMessage(
          {
            stream_id: streamId,
            seq,
            message_id: messageId,
            sender: s.sender,
            body: s.body,
            created_at: at,
          },
          s.stream,
        ),
      );
    });
    const retention = directory.topicRetention.get(streamId);
    if (retention?.count != null && last > retention.count) {
      await trx
        .deleteFrom('messages')
        .where('stream_id', '=', streamId)
        .where('seq', '<=', last - retention.count)
        .execute();
    }
  }
  const rows = cells.length / INSERT_COLUMNS;
  for (let done = 0, size = INSERT_CHUNK; done < rows; ) {
    while (size > rows - done) size >>= 1;
    await Q.insertMessages(size).execute(
      trx,
      cells.slice(done * INSERT_COLUMNS, (done + size) * INSERT_COLUMNS),
    );
    done += size;
  }
  sends.forEach((_, i) => {
    if (results[i] !== undefined) return;
    const key = keys[i]!;
    const prior = existing.get(key) ?? results[firstOfKey.get(key)!]!;
    results[i] = { ...prior, duplicate: true };
  });
  return { results, stored };
}

async function ensureStream(trx: Db, streamId: string, parsed: ParsedStream, by: string, at: number) {
  if (parsed.kind === 'topic') return; // topics are created by createTopic and checked before queueing
  await trx
    .insertInto('streams')
    .values({
      stream_id: streamId,
      kind: parsed.kind,
      group_id: parsed.kind === 'group' ? parsed.groupId : null,
      topic: null,
      last_seq: 0,
      retention_count: null,
      retention_ms: null,
      created_by: by,
      created_at: at,
    })
    .onConflict((oc) => oc.column('stream_id').doNothing())
    .execute();
  if (parsed.kind === 'direct') {
    // Both ends of a conversation get a cursor: it is how catch-up finds their conversations.
    await trx
      .insertInto('cursors')
      .values(parsed.users.map((u) => ({ stream_id: streamId, user_id: u, delivered_seq: 0, read_seq: 0 })))
      .onConflict((oc) => oc.columns(['stream_id', 'user_id']).doNothing())
      .execute();
  }
}
