import type { EventBus, Receipt } from '../../events/index.js';
import { toNumber } from '../../store/index.js';
import { appendTo, byKey, compareKeys, type Db, powerOfTwoChunks, Q } from './queries.js';

/** Receipts per bus event (each names its senders: a few hundred bytes at most). */
const RECEIPTS_PER_EVENT = 16;

/** Widest range of messages read at once to find senders; past it, one query per reader. */
const SENDER_SCAN_MAX = 20_000;

/** A reader's acknowledged positions in one stream. */
export interface CursorMove {
  streamId: string;
  userId: string;
  delivered: number;
  read: number;
}

/** Entries a CursorCache holds at most (about 100 bytes each); past it, it starts over. */
const CURSOR_CACHE_MAX = 200_000;

/**
 * The committed positions of group and direct cursors, for a tracker that is the only writer of its
 * store (SQLite): a commit of acknowledgements then needs no read of the cursors it moves, only of
 * those it has not seen yet (a member's first acknowledgement since the tracker started). At 1,000
 * members that read was 40 % of the cursor commits' SQL time. Topic cursors are not kept: they
 * are subscriptions, deleted by an unsubscribe, and an acknowledgement must not create one. A
 * position is kept only after its transaction committed (`remember`), so what is kept is never
 * ahead of the store; with other trackers writing the same store it could be behind, and must not be used.
 */
export class CursorCache {
  readonly #streams = new Map<string, Map<string, { delivered: number; read: number }>>();
  #size = 0;

  get(streamId: string, userId: string): { delivered: number; read: number } | undefined {
    return this.#streams.get(streamId)?.get(userId);
  }

  /** Positions a committed transaction wrote or read. */
  remember(moves: readonly CursorMove[]): void {
    for (const m of moves) {
      if (m.streamId.startsWith('t:')) continue;
      let users = this.#streams.get(m.streamId);
      if (users === undefined) {
        users = new Map();
        this.#streams.set(m.streamId, users);
      }
      const known = users.get(m.userId);
      if (known !== undefined) {
        known.delivered = Math.max(known.delivered, m.delivered);
        known.read = Math.max(known.read, m.read);
        continue;
      }
      if (this.#size >= CURSOR_CACHE_MAX) {
        this.#streams.clear();
        this.#size = 0;
      }
      users.set(m.userId, { delivered: m.delivered, read: m.read });
      this.#size++;
    }
  }
}

/**
 * Moves cursors forward (never back) and finds whom to tell: per stream,
 * one read of the old cursors (none when `cache` knows them all), one upsert,
 * one scan of the messages moved past; a group's hundred acknowledgements cost
 * three queries, not three hundred. `committed` gets each cursor's position after
 * the transaction (for `cache.remember` once it committed).
 */
export async function moveCursors(
  trx: Db,
  cursors: readonly CursorMove[],
  at: number,
  cache?: CursorCache,
  committed?: CursorMove[],
): Promise<Receipt[]> {
  const byStream = new Map<string, CursorMove[]>();
  for (const c of cursors) appendTo(byStream, c.streamId, c);
  const receipts: Receipt[] = [];
  // In one order on every tracker, as the sends' streams: no deadlock between trackers.
  for (const [streamId, list] of [...byStream].sort(byKey)) {
    const old = new Map<string, { delivered: number; read: number }>();
    let unknown = list;
    if (cache !== undefined && !streamId.startsWith('t:')) {
      unknown = [];
      for (const c of list) {
        const known = cache.get(streamId, c.userId);
        if (known === undefined) unknown.push(c);
        else old.set(c.userId, { delivered: known.delivered, read: known.read });
      }
    }
    for (const chunk of powerOfTwoChunks(unknown)) {
      const rows = (await Q.cursorsOf(chunk.length).execute(trx, [streamId, ...chunk.map((c) => c.userId)]))
        .rows;
      for (const r of rows) {
        old.set(r.user_id, { delivered: toNumber(r.delivered_seq), read: toNumber(r.read_seq) });
      }
    }
    // A cursor never passes the stream's last message: one acknowledged "up to 1e15" would
    // otherwise mark every later message delivered and read, and its receipts claim them.
    const lastRow = (await Q.lastSeqOf.execute(trx, [streamId])).rows[0];
    const last = lastRow === undefined ? 0 : toNumber(lastRow.last_seq);
    const moves: { userId: string; from: [number, number]; delivered: number; read: number }[] = [];
    for (const c of list) {
      const o = old.get(c.userId);
      // A topic cursor is a subscription: an acknowledgement never creates one.
      if (o === undefined && streamId.startsWith('t:')) continue;
      const oldDelivered = o?.delivered ?? 0;
      const oldRead = o?.read ?? 0;
      const read = Math.max(oldRead, Math.min(c.read, last));
      // Read implies delivered.
      const delivered = Math.max(oldDelivered, Math.min(c.delivered, last), read);
      committed?.push({ streamId, userId: c.userId, delivered, read });
      if (delivered === oldDelivered && read === oldRead) continue;
      moves.push({ userId: c.userId, from: [oldDelivered, oldRead], delivered, read });
    }
    if (moves.length === 0) continue;
    moves.sort((x, y) => compareKeys(x.userId, y.userId));
    for (const chunk of powerOfTwoChunks(moves)) {
      await Q.upsertCursors(chunk.length).execute(
        trx,
        chunk.flatMap((m) => [streamId, m.userId, m.delivered, m.read]),
      );
    }
    // Whose messages did each reader move past? (old delivered, new delivered] and (old read, new read].
    const low = Math.min(
      ...moves.map((m) =>
        Math.min(
          m.delivered > m.from[0] ? m.from[0] : m.delivered,
          m.read > m.from[1] ? m.from[1] : m.delivered,
        ),
      ),
    );
    const high = Math.max(...moves.map((m) => m.delivered));
    let sendersIn: (from: number, to: number, reader: string) => Promise<string[]>;
    if (high - low <= SENDER_SCAN_MAX) {
      const rows = (await Q.sendersBetween.execute(trx, [streamId, low, high])).rows;
      const bySeq = rows.map((r) => ({ seq: toNumber(r.seq), sender: r.sender }));
      sendersIn = async (from, to, reader) =>
        bySeq.filter((r) => r.seq > from && r.seq <= to && r.sender !== reader).map((r) => r.sender);
    } else {
      sendersIn = async (from, to, reader) =>
        (
          await trx
            .selectFrom('messages')
            .select('sender')
            .distinct()
            .where('stream_id', '=', streamId)
            .where('seq', '>', from)
            .where('seq', '<=', to)
            .where('sender', '!=', reader)
            .execute()
        ).map((r) => r.sender);
    }
    for (const m of moves) {
      const found = new Set<string>();
      if (m.delivered > m.from[0]) {
        for (const x of await sendersIn(m.from[0], m.delivered, m.userId)) found.add(x);
      }
      if (m.read > m.from[1]) {
        for (const x of await sendersIn(m.from[1], m.read, m.userId)) found.add(x);
      }
      if (found.size === 0) continue;
      receipts.push({
        streamId,
        reader: m.userId,
        delivered: m.delivered,
        read: m.read,
        senders: [...found],
        at,
      });
    }
  }
  return receipts;
}

/** Hands receipts to this tracker's sessions (the hub listens) and, for the senders elsewhere, to the bus. */
export function createReceiptFanOut(bus: EventBus, trackerId: string) {
  const listeners = new Set<(r: Receipt[]) => void>();
  return {
    onReceipts(listener: (receipts: Receipt[]) => void): () => void {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    /** Receipts another tracker published: for this tracker's sessions only. */
    deliver(receipts: Receipt[]) {
      for (const l of listeners) l(receipts);
    },
    /** Pushes receipts to this tracker's sessions and sends them to the others. */
    publish(receipts: Receipt[]) {
      for (const l of listeners) l(receipts);
      // A few per event: NOTIFY payloads are capped near 8000 bytes.
      for (let i = 0; i < receipts.length; i += RECEIPTS_PER_EVENT) {
        void bus.publish({
          kind: 'receipts',
          origin: trackerId,
          receipts: receipts.slice(i, i + RECEIPTS_PER_EVENT),
        });
      }
    },
  };
}

export type ReceiptFanOut = ReturnType<typeof createReceiptFanOut>;
