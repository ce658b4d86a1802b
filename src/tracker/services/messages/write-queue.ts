import { createGroupCommit, JobFailed } from '../../../core/index.js';
import type { MessageSent, StoredMessage } from '../../../protocol/api.js';
import { CoterieError } from '../../../protocol/errors.js';
import type { Receipt } from '../../events/index.js';
import type { ServiceDeps } from '../context.js';
import type { Directory } from './directory.js';
import type { PushPlanner } from './push.js';
import { CursorCache, type CursorMove, moveCursors, type ReceiptFanOut } from './receipts.js';
import { type NewMessage, writeMessages } from './write-messages.js';
import { writeMessagesPg } from './write-messages-pg.js';

/** Messages per transaction: bounds a commit's latency under a flood. */
const MAX_BATCH = 4000;
/** Cursor moves that share a commit with sends; more get a transaction of their own. */
const RIDING_CURSORS = 64;
/**
 * PostgreSQL: batches in flight at once per tracker, each on a connection of its own (the pool
 * has 10). Streams are spread over the lanes by a hash that is the same on every tracker, so two
 * trackers' batches that lock the same streams' rows meet in the same lane and take turns,
 * while the other lane commits meanwhile. Two, not more: a lane's batch is what arrived while
 * its previous one committed, so each lane more cuts the same sends into smaller batches, and
 * the batch statement costs PostgreSQL about 1 ms of CPU a batch plus 14 µs a message: 40 a
 * batch (four lanes, three trackers) cost twice the CPU per message of 170 (docs/performance.md).
 * SQLite has one writer: one lane.
 */
const POSTGRES_LANES = 2;
/**
 * PostgreSQL: the lanes take turns (core/group-commit.ts, `takeTurnsMs`): while one lane's batch
 * commits, the other gathers, so a tracker has one batch in flight, and fewer, larger batches
 * carry the same sends (a batch costs PostgreSQL about 1 ms of CPU plus 14 µs a message):
 * measured at load 13-37, 246-280 a batch at one tracker against 155-168, 66-71 at three against
 * 50-56, and 8 % less CPU per message for everything together (docs/performance.md).
 * A lane still goes alone after this long, the bound on what a batch held on another tracker's
 * row locks (the lanes' reason to be) costs the other lane's streams. Above a loaded commit's
 * few milliseconds, so that turns hold under load, when batches matter most.
 */
const POSTGRES_TURN_MS = 20;
/**
 * SQLite: how long a few acknowledgements wait for sends to ride along with before they get a
 * commit of their own. A conversation at a steady pace acknowledges each message while the next
 * is on its way: riding, each message costs one commit, not two, and the sender's receipt leaves
 * in the same write as its next send's answer, not in a write of its own (a third of the socket
 * writes of a paced message). Receipts come at most this much later when nothing is being sent.
 */
const CURSOR_LINGER_MS = 2;

/**
 * SQLite: cursor moves per commit of their own, at most. SQLite's commits run on the tracker's
 * thread, and no socket is read meanwhile: a thousand members' acknowledgements in one commit
 * (with their receipts) held a group's next message up for all of it. In parts, with a turn of
 * the event loop between them, a send read meanwhile commits and is pushed before the next part.
 */
const CURSORS_PER_COMMIT = 256;

interface PendingCursor extends CursorMove {
  /** Called once the move is written (or dropped); none when nobody waits. */
  waiters: (() => void)[] | undefined;
}

/**
 * Fault injection for the cluster tests: the tracker kills itself after a batch's commit and
 * before its `messages_stored` event leaves, the window a crash can hit (the other trackers
 * catch their sessions up when it drops out of the cluster).
 */
const dieBeforeAnnounce = process.env.COTERIE_FAULT_DIE_BEFORE_ANNOUNCE === '1';

const cursorKey = (streamId: string, userId: string) => `${streamId}\u0000${userId}`;

const asStoreError = (err: unknown) =>
  CoterieError.from(err, 'UNAVAILABLE', (text) => `the message store failed: ${text}; retry`);

type Written = { results: (MessageSent | JobFailed)[]; stored: StoredMessage[]; receipts: Receipt[] };
/** Seqs [from, to] of stream s, as `messages_stored` carries them. */
type StoredRange = { s: string; from: number; to: number };

/**
 * PostgreSQL: the seqs a batch answered `duplicate` on streams where it stored nothing. Their
 * first attempt committed but may have been neither announced nor pushed: its commit's answer
 * was lost (a failover during it: UNAVAILABLE, outcome unknown), or its tracker died between
 * its commit and its announcement (the others' catch-up when it drops out of the cluster comes
 * only dead-after later). They are announced and pushed again:
 * the push marks (push.ts) drop what was pushed already, so this sends nothing twice, only
 * sooner what the stream's next push would have read as a gap. A stream with rows stored in
 * this batch needs nothing more: its push and announcement read any gap before them.
 * Not on SQLite: one tracker pushes each of its commits in the turn that wrote it, and sessions
 * caught up from the store after a restart, so a duplicate there was always pushed (and a push
 * from a stream's first mark would send again what they caught up).
 */
function retriedRanges(written: Written): StoredRange[] | undefined {
  let ranges: Map<string, StoredRange> | undefined;
  for (const r of written.results) {
    if (r instanceof JobFailed || !r.duplicate) continue;
    ranges ??= new Map();
    const range = ranges.get(r.streamId);
    if (range === undefined) ranges.set(r.streamId, { s: r.streamId, from: r.seq, to: r.seq });
    else {
      range.from = Math.min(range.from, r.seq);
      range.to = Math.max(range.to, r.seq);
    }
  }
  if (ranges === undefined) return undefined;
  for (const m of written.stored) ranges.delete(m.streamId);
  return ranges.size > 0 ? [...ranges.values()] : undefined;
}

/**
 * The write queue of sends and cursor moves, in lanes by stream (core/group-commit.ts):
 * whatever arrives while a lane's transaction commits is written by its next one. After a
 * commit the sends resolve, the other trackers hear of the rows and this tracker pushes them
 * (and, on PostgreSQL, those that retried sends found: `retriedRanges`).
 */
export function createWriteQueue(
  deps: Pick<ServiceDeps, 'store' | 'bus' | 'now'> & {
    trackerId: string;
    directory: Directory;
    receipts: ReceiptFanOut;
    push: PushPlanner;
    onBatchWritten?: ((messages: number, seconds: number) => void) | undefined;
  },
) {
  const { store, bus, now, trackerId, directory, receipts, push } = deps;
  const postgres = store.dialect === 'postgres';
  const lanes = postgres ? POSTGRES_LANES : 1;
  const pendingCursors: Map<string, PendingCursor>[] = Array.from({ length: lanes }, () => new Map());
  /** SQLite: this tracker is the store's one writer, so the cursors it committed are known. */
  const cursorCache = postgres ? undefined : new CursorCache();
  /** Per lane, the one timer that ends the cursors' wait for sends (CURSOR_LINGER_MS). */
  const lingering: (ReturnType<typeof setTimeout> | undefined)[] = new Array(lanes).fill(undefined);

  /** One transaction for a lane's sends (and, on SQLite, a few acknowledgements riding along). */
  async function write(sends: NewMessage[], lane: number): Promise<Written> {
    const waiting = pendingCursors[lane]!;
    // A few acknowledgements ride along in the same commit (at a steady pace each message has
    // one): a commit is the expensive part. Many (a big group's) get their own, after. Not on
    // PostgreSQL, where the sends are one statement of their own.
    const riders = !postgres && waiting.size <= RIDING_CURSORS ? [...waiting.values()] : [];
    for (const c of riders) waiting.delete(cursorKey(c.streamId, c.userId));
    const at = now();
    try {
      if (postgres) {
        const w = await writeMessagesPg(store, directory, sends, at);
        if (w.failed === undefined) return { ...w, receipts: [] };
        // Part of the batch committed: the sends that failed are told as a whole batch would be.
        const failed = new JobFailed(asStoreError(w.failed.error));
        return { ...w, results: w.results.map((r) => (r === w.failed ? failed : r)), receipts: [] };
      }
      const positions: CursorMove[] = [];
      const written = await store.transaction(async (trx) => {
        const w = await writeMessages(trx, directory, sends, at);
        const moved = riders.length > 0 ? await moveCursors(trx, riders, at, cursorCache, positions) : [];
        return { ...w, receipts: moved };
      });
      cursorCache?.remember(positions);
      return written;
    } finally {
      for (const c of riders) if (c.waiters !== undefined) for (const w of c.waiters) w();
    }
  }

  const sends = createGroupCommit<NewMessage, MessageSent>({
    lanes,
    keyOf: (s) => s.streamId,
    maxBatch: MAX_BATCH,
    lingerMs: 0,
    takeTurnsMs: postgres ? POSTGRES_TURN_MS : 0,
    async write(batch, lane) {
      let written: Written;
      const started = performance.now();
      try {
        written = await write(batch, lane);
      } catch (err) {
        throw asStoreError(err);
      }
      deps.onBatchWritten?.(batch.length, (performance.now() - started) / 1000);
      if (written.receipts.length > 0) receipts.publish(written.receipts);
      for (const s of batch) directory.noteStream(s.streamId);
      const retried = postgres ? retriedRanges(written) : undefined;
      if (written.stored.length > 0) {
        // Test hook: a tracker killed between its commit and its announcement (test/cluster).
        if (dieBeforeAnnounce) process.kill(process.pid, 'SIGKILL');
      }
      if (written.stored.length > 0 || retried !== undefined) publishStored(written.stored, retried, now());
      if (written.stored.length > 0) push.pushLocal(written.stored);
      if (retried !== undefined) for (const r of retried) push.pushCommitted(r.s, r.from, r.to);
      return written.results;
    },
    // Then the cursor moves of everything acknowledged meanwhile in this lane.
    afterBatch: (lane) => flushCursors(lane),
  });

  async function flushCursors(lane: number): Promise<void> {
    const waiting = pendingCursors[lane]!;
    if (waiting.size === 0) return;
    let cursors: PendingCursor[];
    if (postgres || waiting.size <= CURSORS_PER_COMMIT) {
      cursors = [...waiting.values()];
      waiting.clear();
    } else {
      cursors = [];
      for (const [key, c] of waiting) {
        cursors.push(c);
        waiting.delete(key);
        if (cursors.length === CURSORS_PER_COMMIT) break;
      }
    }
    const at = now();
    let moved: Receipt[] = [];
    try {
      const positions: CursorMove[] = [];
      moved = await store.transaction((trx) => moveCursors(trx, cursors, at, cursorCache, positions));
      cursorCache?.remember(positions);
    } catch {
      // Acknowledgements are repeated by peers after each reconnect: losing a batch only delays receipts.
    }
    for (const c of cursors) if (c.waiters !== undefined) for (const w of c.waiters) w();
    if (moved.length > 0) receipts.publish(moved);
    if (waiting.size > 0 && !postgres) {
      // The rest in the lane's next round, after a turn of the event loop: a send read meanwhile
      // is written (and pushed) before it.
      sends.wake(lane);
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Tells the other trackers which rows were committed (they read them); ranges, not bodies.
   * After the commit, not in it (write-messages-pg.ts says why), in commit order per lane (a
   * stream's sends all go through one lane), through the bus's one notify connection.
   */
  function publishStored(stored: StoredMessage[], retried: StoredRange[] | undefined, at: number) {
    const ranges = new Map<string, StoredRange>();
    for (const m of stored) {
      const r = ranges.get(m.streamId);
      if (r === undefined) ranges.set(m.streamId, { s: m.streamId, from: m.seq, to: m.seq });
      else r.to = Math.max(r.to, m.seq);
    }
    const streams = retried === undefined ? [...ranges.values()] : [...ranges.values(), ...retried];
    void bus.publish({ kind: 'messages_stored', origin: trackerId, streams, at });
  }

  return {
    /** Queues a checked send; settles once the send's transaction committed (or failed). */
    send(message: NewMessage): Promise<MessageSent> {
      return sends.submit(message);
    },

    /**
     * Queues a checked cursor move, merged with one already queued for the
     * same reader and stream (positions only grow). Written at the next flush
     * of its stream's lane (`schedule`); `written`, if given, is called once it
     * is written, or dropped when the store failed. Nothing is made for a move
     * nobody waits for (a peer's acknowledgements without an id): no promise per cursor.
     */
    addCursor(streamId: string, userId: string, delivered: number, read: number, written?: () => void): void {
      const waiting = pendingCursors[sends.laneOf(streamId)]!;
      const key = cursorKey(streamId, userId);
      let p = waiting.get(key);
      if (p === undefined) {
        p = { streamId, userId, delivered: 0, read: 0, waiters: undefined };
        waiting.set(key, p);
      }
      if (delivered > p.delivered) p.delivered = delivered;
      if (read > p.read) p.read = read;
      if (written === undefined) return;
      if (p.waiters === undefined) p.waiters = [written];
      else p.waiters.push(written);
    },

    /**
     * Starts a flush of every lane with cursor moves queued: at once where they cannot ride
     * with sends (PostgreSQL, or more than a commit takes along), else after CURSOR_LINGER_MS
     * unless a batch of sends takes them first.
     */
    schedule() {
      pendingCursors.forEach((waiting, lane) => {
        if (waiting.size === 0) return;
        if (postgres || waiting.size > RIDING_CURSORS) {
          sends.wake(lane);
          return;
        }
        if (lingering[lane] !== undefined) return;
        const timer = setTimeout(() => {
          lingering[lane] = undefined;
          if (waiting.size > 0) sends.wake(lane);
        }, CURSOR_LINGER_MS);
        timer.unref();
        lingering[lane] = timer;
      });
    },

    /** Settles once everything queued is written (cursors waiting for sends too). */
    drain() {
      pendingCursors.forEach((waiting, lane) => {
        clearTimeout(lingering[lane]);
        lingering[lane] = undefined;
        if (waiting.size > 0) sends.wake(lane);
      });
      return sends.drain();
    },
  };
}
