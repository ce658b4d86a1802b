import type { MessageSent, StoredMessage } from '../../../protocol/api.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { Receipt } from '../../events/index.js';
import type { ServiceDeps } from '../context.js';
import type { Directory } from './directory.js';
import type { PushPlanner } from './push.js';
import { type CursorMove, moveCursors, type ReceiptFanOut } from './receipts.js';
import { type NewMessage, writeMessages } from './write-messages.js';

/** Messages per transaction: bounds a commit's latency under a flood. */
const MAX_BATCH = 4000;
/** Cursor moves that share a commit with sends; more get a transaction of their own. */
const RIDING_CURSORS = 64;

interface PendingSend extends NewMessage {
  resolve: (r: MessageSent) => void;
  reject: (e: Error) => void;
}

interface PendingCursor extends CursorMove {
  waiters: (() => void)[];
}

const cursorKey = (streamId: string, userId: string) => `${streamId}\u0000${userId}`;

const asStoreError = (err: unknown) =>
  CoterieError.from(err, 'UNAVAILABLE', (text) => `the message store failed: ${text}; retry`);

/**
 * The one write queue of sends and cursor moves: whatever arrives while a
 * transaction commits is written by the next one. After a commit the sends
 * resolve, the other trackers hear of the rows and this tracker pushes them.
 */
export function createWriteQueue(
  deps: Pick<ServiceDeps, 'store' | 'bus' | 'now'> & {
    trackerId: string;
    directory: Directory;
    receipts: ReceiptFanOut;
    push: PushPlanner;
  },
) {
  const { store, bus, now, trackerId, directory, receipts, push } = deps;
  let pendingSends: PendingSend[] = [];
  const pendingCursors = new Map<string, PendingCursor>();
  let flushing: Promise<void> | undefined;
  let scheduled = false;

  const schedule = () => {
    if (scheduled || flushing !== undefined) return;
    scheduled = true;
    // setImmediate: everything that arrived in this turn of the event loop joins the batch.
    setImmediate(() => {
      scheduled = false;
      flushing = flushLoop().finally(() => {
        flushing = undefined;
        if (pendingSends.length > 0 || pendingCursors.size > 0) schedule();
      });
    });
  };

  /**
   * Sends first, in their own transaction, so that a burst of
   * acknowledgements (a group's hundred readers) never delays a message;
   * then the cursor moves of everything acknowledged meanwhile.
   */
  async function flushLoop(): Promise<void> {
    while (pendingSends.length > 0 || pendingCursors.size > 0) {
      if (pendingSends.length > 0) {
        const sends = pendingSends.slice(0, MAX_BATCH);
        pendingSends = pendingSends.slice(sends.length);
        // A few acknowledgements ride along in the same commit (at a steady pace each message has
        // one): a commit is the expensive part. Many (a big group's) get their own, after.
        const riders = pendingCursors.size <= RIDING_CURSORS ? [...pendingCursors.values()] : [];
        for (const c of riders) pendingCursors.delete(cursorKey(c.streamId, c.userId));
        const at = now();
        let written: { results: MessageSent[]; stored: StoredMessage[]; receipts: Receipt[] };
        try {
          written = await store.transaction(async (trx) => {
            const w = await writeMessages(trx, directory, sends, at);
            return { ...w, receipts: riders.length > 0 ? await moveCursors(trx, riders, at) : [] };
          });
        } catch (err) {
          for (const s of sends) s.reject(asStoreError(err));
          for (const c of riders) for (const w of c.waiters) w();
          continue;
        }
        for (const c of riders) for (const w of c.waiters) w();
        if (written.receipts.length > 0) receipts.publish(written.receipts);
        for (const [i, s] of sends.entries()) {
          directory.noteStream(s.streamId);
          s.resolve(written.results[i]!);
        }
        if (written.stored.length > 0) {
          publishStored(written.stored, at);
          push.pushLocal(written.stored);
        }
      }
      if (pendingCursors.size > 0) {
        const cursors = [...pendingCursors.values()];
        pendingCursors.clear();
        const at = now();
        let moved: Receipt[] = [];
        try {
          moved = await store.transaction((trx) => moveCursors(trx, cursors, at));
        } catch {
          // Acknowledgements are repeated by peers after each reconnect: losing a batch only delays receipts.
        }
        for (const c of cursors) for (const w of c.waiters) w();
        if (moved.length > 0) receipts.publish(moved);
      }
    }
  }

  /** Tells the other trackers which rows were committed (they read them); ranges, not bodies. */
  function publishStored(stored: StoredMessage[], at: number) {
    const ranges = new Map<string, { s: string; from: number; to: number }>();
    for (const m of stored) {
      const r = ranges.get(m.streamId);
      if (r === undefined) ranges.set(m.streamId, { s: m.streamId, from: m.seq, to: m.seq });
      else r.to = Math.max(r.to, m.seq);
    }
    void bus.publish({ kind: 'messages_stored', origin: trackerId, streams: [...ranges.values()], at });
  }

  return {
    /** Queues a checked send and starts a flush; settles once the send's transaction committed (or failed). */
    send(message: NewMessage): Promise<MessageSent> {
      const done = new Promise<MessageSent>((resolve, reject) => {
        pendingSends.push({ ...message, resolve, reject });
      });
      schedule();
      return done;
    },

    /**
     * Queues a checked cursor move, merged with one already queued for the
     * same reader and stream (positions only grow). Written at the next flush
     * (`schedule`); resolves once written, or dropped when the store failed.
     */
    addCursor(streamId: string, userId: string, delivered: number, read: number): Promise<void> {
      const key = cursorKey(streamId, userId);
      let p = pendingCursors.get(key);
      if (p === undefined) {
        p = { streamId, userId, delivered: 0, read: 0, waiters: [] };
        pendingCursors.set(key, p);
      }
      p.delivered = Math.max(p.delivered, delivered);
      p.read = Math.max(p.read, read);
      const entry = p;
      return new Promise<void>((resolve) => entry.waiters.push(resolve));
    },

    schedule,

    /** Settles once everything queued is written. */
    async drain(): Promise<void> {
      while (flushing !== undefined || scheduled || pendingSends.length > 0 || pendingCursors.size > 0) {
        if (flushing !== undefined) await flushing;
        else await new Promise((r) => setImmediate(r));
      }
    },
  };
}
