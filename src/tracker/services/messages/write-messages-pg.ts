import { CompiledQuery } from 'kysely';
import { JobFailed } from '../../../core/index.js';
import type { MessageSent, StoredMessage } from '../../../protocol/api.js';
import { newTimeOrderedId } from '../../../protocol/streams.js';
import { namedStatement, type Store, toNumber } from '../../store/index.js';
import type { Directory } from './directory.js';
import { toStoredMessage } from './model.js';
import { type NewMessage, writeMessages } from './write-messages.js';

/**
 * PostgreSQL: a batch of sends in one statement, so that a batch costs one
 * round trip to the server and one commit whatever its size (write-messages.ts
 * costs two queries per sender and per stream, each a round trip). Same
 * rules: a retried send (same sender and client id) gets its first copy back;
 * new ones get the next seqs of their streams, numbered in the statement
 * after the streams' rows are locked in stream order (as on every tracker, and
 * as write-messages.ts locks them: code-unit order, hence COLLATE "C" whatever
 * the database's collation; no deadlock), so seqs have no gaps and a stream's order is its commit order.
 * Two batches carrying the same new (sender, client id) at once: the second
 * fails on the unique key and runs again (store.statement retries it), then
 * finds the first's copy. The statement is its own transaction: one round
 * trip and one commit per batch.
 *
 * It sends no NOTIFY: a transaction that NOTIFYs holds PostgreSQL's
 * database-wide notify lock from its pre-commit until it ends, that is until
 * its commit record is flushed, so every tracker's batches would commit one
 * at a time, each waiting out the others' fsyncs (docs/performance.md). The
 * caller announces the stored rows after the commit, through the bus's notify
 * connection, whose commits wait for no flush (pg-bus.ts).
 *
 * Retried sends are found by one probe of the (sender, client id) key per send, a LATERAL
 * subquery with LIMIT 1 (kept a nested loop, never pulled up into a join). As a plain join, a
 * connection's generic plan, made at its sixth run and kept, chose a hash join over a scan of
 * the whole messages table whenever the table was small then (a few hundred rows, a fresh
 * database): the scan stayed in the plan as the table grew, so each batch read every message
 * stored (in the 3-tracker bench, 700 scans and 24.7 million rows read for 77,000 sends). A
 * probe costs about one index lookup whatever the table holds; the planner prefers a scan only
 * for a table of a page or so, and the next ANALYZE (autovacuum) replans.
 */
export const SEND_BATCH_SQL = namedStatement(`
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
    WITH ORDINALITY AS i(stream_id, message_id, sender, client_id, body, ord)
), existing AS (
  SELECT i.ord, m.stream_id, m.seq, m.message_id, m.created_at
  FROM input i CROSS JOIN LATERAL (
    SELECT stream_id, seq, message_id, created_at FROM messages
    WHERE sender = i.sender AND client_id = i.client_id LIMIT 1
  ) m
), fresh AS (
  SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.ord = i.ord)
), counts AS (
  SELECT stream_id, count(*) AS n FROM fresh GROUP BY stream_id
), locked AS MATERIALIZED (
  SELECT s.stream_id FROM streams s WHERE s.stream_id IN (SELECT stream_id FROM counts)
  ORDER BY s.stream_id COLLATE "C" FOR UPDATE
), bumped AS (
  UPDATE streams s SET last_seq = s.last_seq + c.n
  FROM counts c JOIN locked l ON l.stream_id = c.stream_id
  WHERE s.stream_id = c.stream_id
  RETURNING s.stream_id, s.last_seq, c.n
), numbered AS MATERIALIZED (
  SELECT f.ord, f.stream_id, f.message_id, f.sender, f.client_id, f.body,
    b.last_seq - b.n + row_number() OVER (PARTITION BY f.stream_id ORDER BY f.ord) AS seq
  FROM fresh f JOIN bumped b ON b.stream_id = f.stream_id
), inserted AS (
  INSERT INTO messages (stream_id, seq, message_id, sender, client_id, body, created_at)
  SELECT stream_id, seq, message_id, sender, client_id, body, $6::bigint FROM numbered
)
SELECT ord, stream_id, seq, message_id, $6::bigint AS created_at, false AS duplicate FROM numbered
UNION ALL
SELECT ord, stream_id, seq, message_id, created_at, true AS duplicate FROM existing`);

interface Row {
  ord: string | number;
  stream_id: string;
  seq: string | number;
  message_id: string;
  created_at: string | number;
  duplicate: boolean;
}

/** `stored`: the rows written, for the caller to push and to announce to the other trackers. */
type Written = { results: MessageSent[]; stored: StoredMessage[] };
/** A batch's outcome; `failed`, when some sends failed and others were written: it is in their places. */
type PartlyWritten = { results: (MessageSent | JobFailed)[]; stored: StoredMessage[]; failed?: JobFailed };

/** The statement covers a known stream without retention by count (others: write-messages.ts). */
const inOneStatement = (directory: Pick<Directory, 'streamKnown' | 'topicRetention'>, s: NewMessage) =>
  directory.streamKnown(s.streamId) && directory.topicRetention.get(s.streamId)?.count == null;

/**
 * PostgreSQL: a batch's sends to streams the statement covers go in one statement; the others
 * (a new conversation's first sends, topics with retention by count) in a transaction of
 * write-messages.ts first. So a new stream costs its own few queries, not the whole batch's
 * (a batch of thousands behind one new conversation took the slow path whole). A stream's
 * sends all go one way, in order; each way numbers its own streams.
 */
export async function writeMessagesPg(
  store: Pick<Store, 'statement' | 'transaction'>,
  directory: Pick<Directory, 'streamKnown' | 'topicRetention'>,
  sends: readonly NewMessage[],
  at: number,
): Promise<PartlyWritten> {
  const slow: number[] = [];
  const fast: number[] = [];
  sends.forEach((s, i) => {
    (inOneStatement(directory, s) ? fast : slow).push(i);
  });
  const pick = (idx: number[]) => idx.map((i) => sends[i]!);
  const inTransaction = (batch: readonly NewMessage[]) =>
    store.transaction((trx) => writeMessages(trx, directory, batch, at));
  if (slow.length === 0) return writeMessagesInOneStatement(store, sends, at);
  if (fast.length === 0) return inTransaction(sends);
  const first = await inTransaction(pick(slow));
  const results: (MessageSent | JobFailed)[] = new Array(sends.length);
  slow.forEach((i, k) => {
    results[i] = first.results[k]!;
  });
  let second: Written;
  try {
    second = await writeMessagesInOneStatement(store, pick(fast), at);
  } catch (err) {
    // The transaction's sends are committed: they are answered, announced and pushed as such
    // (failing them too left their rows unpushed until a retry, which some senders never make).
    // Only the statement's sends fail; their senders retry them.
    const failed = new JobFailed(err);
    for (const i of fast) results[i] = failed;
    return { results, stored: first.stored, failed };
  }
  fast.forEach((i, k) => {
    results[i] = second.results[k]!;
  });
  return { results, stored: [...first.stored, ...second.stored] };
}

async function writeMessagesInOneStatement(
  store: Pick<Store, 'statement'>,
  sends: readonly NewMessage[],
  at: number,
): Promise<Written> {
  // The same id twice in one batch: the first is written, the others answered with it.
  const firstOfKey = new Map<string, number>();
  const unique: number[] = [];
  sends.forEach((s, i) => {
    const key = `${s.sender}\n${s.clientId}`;
    if (firstOfKey.has(key)) return;
    firstOfKey.set(key, i);
    unique.push(i);
  });
  const column = (f: (s: NewMessage) => string) => unique.map((i) => f(sends[i]!));
  const messageIds = unique.map(() => newTimeOrderedId(at));
  const query = CompiledQuery.raw(SEND_BATCH_SQL, [
    column((s) => s.streamId),
    messageIds,
    column((s) => s.sender),
    column((s) => s.clientId),
    column((s) => s.body),
    at,
  ]);
  const rows = await store.statement(async (db) => (await db.executeQuery<Row>(query)).rows);
  // In arrival order: within a stream that is seq order, the order its pushes go out in.
  rows.sort((a, b) => toNumber(a.ord) - toNumber(b.ord));
  const results: MessageSent[] = new Array(sends.length);
  const stored: StoredMessage[] = [];
  for (const r of rows) {
    const i = unique[toNumber(r.ord) - 1]!;
    const s = sends[i]!;
    const seq = toNumber(r.seq);
    const sentAt = toNumber(r.created_at);
    results[i] = {
      messageId: r.message_id,
      streamId: r.stream_id,
      seq,
      state: 'sent',
      sentAt,
      duplicate: r.duplicate,
    };
    if (!r.duplicate) {
      stored.push(
        toStoredMessage(
          {
            stream_id: r.stream_id,
            seq,
            message_id: r.message_id,
            sender: s.sender,
            body: s.body,
            created_at: sentAt,
          },
          s.stream,
        ),
      );
    }
  }
  sends.forEach((s, i) => {
    if (results[i] !== undefined) return;
    results[i] = { ...results[firstOfKey.get(`${s.sender}\n${s.clientId}`)!]!, duplicate: true };
  });
  return { results, stored };
}
