import type { Kysely } from 'kysely';
import type { StoredMessage } from '../../../protocol/api.js';
import { parseStreamId } from '../../../protocol/streams.js';
import type { Database } from '../../store/index.js';
import { toNumber } from '../../store/index.js';
import type { Directory } from './directory.js';
import {
  type EncodedMessage,
  encode,
  type MessagesLogger,
  type StoredBatch,
  toStoredMessage,
} from './model.js';
import { appendTo, messagesOf, powerOfTwoChunks, Q } from './queries.js';

export interface PushPlanner {
  /** This tracker's commits. */
  pushLocal(stored: StoredMessage[]): void;
  /** Another tracker committed seqs [from, to] of a stream. */
  pushRemote(streamId: string, from: number, to: number): void;
  /**
   * Seqs [from, to] of a stream were committed earlier, maybe never pushed (a send answered
   * `duplicate` here): pushed from the store past the mark, as a later push would read them.
   */
  pushCommitted(streamId: string, from: number, to: number): void;
  onStored(listener: (batch: StoredBatch) => void): () => void;
  setConnectedUsers(filter: (users: readonly string[]) => readonly string[]): void;
  /** Settles once every read queued for a push is done. */
  idle(): Promise<void>;
}

/**
 * Which messages go to the sessions on this tracker, in order per stream: the
 * listeners (the session hub) get each batch with the readers of its streams.
 * `shared`: other trackers may write the same streams (PostgreSQL); with
 * SQLite every commit is this tracker's.
 */
export function createPushPlanner(deps: {
  db: Kysely<Database>;
  directory: Directory;
  shared: boolean;
  logger?: MessagesLogger | undefined;
}): PushPlanner {
  const { db, directory, shared, logger } = deps;
  const storedListeners = new Set<(b: StoredBatch) => void>();
  let connectedUsers: (users: readonly string[]) => readonly string[] = () => [];

  /**
   * The highest seq of each stream handed to the listeners. Messages of one
   * stream can be committed through several trackers: a batch that does not
   * follow on from it (a gap: another tracker's commit not heard of yet)
   * reads the missing rows first, and rows at or below it were pushed already.
   * So every stream is pushed without holes: a session that got seq n got
   * everything before it (and may acknowledge up to n).
   */
  const pushedTo = new Map<string, number>();
  /** Streams with a read in flight: what comes next for them waits behind it, in order. */
  const streamChains = new Map<string, Promise<void>>();

  async function readersByStream(stored: EncodedMessage[]): Promise<Map<string, readonly string[]>> {
    const readers = new Map<string, readonly string[]>();
    for (const m of stored) {
      const id = m.message.streamId;
      if (!readers.has(id)) readers.set(id, await directory.readersOf(id, parseStreamId(id)!));
    }
    return readers;
  }

  const deliver = (stored: EncodedMessage[], readers: Map<string, readonly string[]>) => {
    if (stored.length === 0 || storedListeners.size === 0) return;
    const batch: StoredBatch = { messages: stored, readers };
    for (const l of storedListeners) l(batch);
  };

  async function readRange(streamId: string, from: number, to: number): Promise<EncodedMessage[]> {
    const parsed = parseStreamId(streamId);
    if (parsed === undefined || to < from) return [];
    const rows = await messagesOf(db, streamId).where('seq', '>=', from).where('seq', '<=', to).execute();
    return rows.map((r) => encode(toStoredMessage(r, parsed)));
  }

  /** Runs `job` after whatever is queued for this stream (reads of earlier ranges). */
  function chain(streamId: string, job: () => Promise<void>) {
    const prev = streamChains.get(streamId) ?? Promise.resolve();
    const next = prev
      .then(job)
      .catch((err: unknown) => {
        // The store failed: the mark did not move, so the stream's next push reads these rows
        // again (and the sessions' next catch-up has them anyway). Recovered, but worth a line.
        logger?.warn({ err, streamId }, 'message push read failed; the next push or catch-up reads again');
      })
      .finally(() => {
        if (streamChains.get(streamId) === next) streamChains.delete(streamId);
      });
    streamChains.set(streamId, next);
  }

  /**
   * Where this tracker's first push of a stream starts. Its sessions caught up
   * from the store when they connected; what another tracker committed since
   * then is for this tracker to push, and that tracker's event may come after
   * a later commit's, or never (it died between its commit and its NOTIFY).
   * Starting at the event would skip those rows for good (the peers acknowledge
   * what they get). So the first push starts after the lowest delivered cursor
   * of the readers connected here; their peers drop what they already hold.
   */
  async function firstPushFrom(streamId: string, here: readonly string[], from: number): Promise<number> {
    if (!shared) return from; // one tracker: every commit is its own, pushed in order
    const delivered = new Map<string, number>();
    for (const chunk of powerOfTwoChunks(here)) {
      const rows = (await Q.cursorsOf(chunk.length).execute(db, [streamId, ...chunk])).rows;
      for (const r of rows) delivered.set(r.user_id, toNumber(r.delivered_seq));
    }
    let start = from;
    for (const u of here) start = Math.min(start, (delivered.get(u) ?? 0) + 1);
    return start;
  }

  /** Pushes rows of a stream up to `to`, filling any gap since the last push first. */
  async function pushUpTo(streamId: string, from: number, to: number, have: EncodedMessage[] = []) {
    const parsed = parseStreamId(streamId);
    if (parsed === undefined) return;
    const here = connectedUsers(await directory.readersOf(streamId, parsed));
    if (here.length === 0) {
      // No reader has a session here: nothing to read. Whoever connects later catches up from
      // the store, which holds these rows already.
      pushedTo.set(streamId, Math.max(pushedTo.get(streamId) ?? 0, to));
      return;
    }
    const start = (pushedTo.get(streamId) ?? (await firstPushFrom(streamId, here, from)) - 1) + 1;
    if (to < start) return;
    const known = have.filter((m) => m.message.seq >= start);
    const firstKnown = known.length > 0 ? known[0]!.message.seq : to + 1;
    const read = await readRange(streamId, start, Math.min(to, firstKnown - 1));
    if (streamId.startsWith('t:') && read.length > 0) directory.forgetSubscribers(streamId);
    const stored = [...read, ...known];
    // Readers before the mark: if this read fails, the mark stays and the next push retries the range.
    const readers = await readersByStream(stored);
    // The reads are async: another job cannot run meanwhile (chained), so the mark is still ours.
    pushedTo.set(streamId, Math.max(pushedTo.get(streamId) ?? 0, to));
    deliver(stored, readers);
  }

  /** Rows [from, to] of a stream, committed: pushed from the store past the mark, in order. */
  function pushFromStore(streamId: string, from: number, to: number) {
    // Most of another tracker's commits concern no session here (a stream's readers are on its
    // tracker, or offline): with no read in flight and the readers known, the mark moves on at
    // once, as pushUpTo would move it, without a job per stream and per commit.
    const parsed = streamChains.has(streamId) ? undefined : parseStreamId(streamId);
    const known = parsed === undefined ? undefined : directory.cachedReadersOf(streamId, parsed);
    if (known !== undefined && connectedUsers(known).length === 0) {
      pushedTo.set(streamId, Math.max(pushedTo.get(streamId) ?? 0, to));
      return;
    }
    chain(streamId, () => pushUpTo(streamId, from, to));
  }

  return {
    pushRemote(streamId, from, to) {
      // Topic subscribers may have changed through another tracker: read them again for its messages.
      if (streamId.startsWith('t:')) directory.forgetSubscribers(streamId);
      pushFromStore(streamId, from, to);
    },

    // Below the mark nothing is read nor pushed again; past it, the rows a later push would read
    // first (the gap), only sooner.
    pushCommitted: pushFromStore,

    /**
     * Pushed at once when they follow on from the last push (always, with one
     * tracker, once a stream was pushed) and the readers are known; otherwise
     * in order behind a read (the gap, the readers, or a first push's start).
     */
    pushLocal(stored) {
      if (stored.length === 0) return;
      const byStream = new Map<string, EncodedMessage[]>();
      for (const m of stored) appendTo(byStream, m.streamId, encode(m));
      const ready: EncodedMessage[] = [];
      const readers = new Map<string, readonly string[]>();
      for (const [streamId, list] of byStream) {
        const first = list[0]!.message.seq;
        const lastSeq = list[list.length - 1]!.message.seq;
        const mark = pushedTo.get(streamId);
        const known = directory.cachedReadersOf(streamId, parseStreamId(streamId)!);
        if (!streamChains.has(streamId) && mark === first - 1 && known !== undefined) {
          pushedTo.set(streamId, lastSeq);
          readers.set(streamId, known);
          for (const e of list) ready.push(e);
        } else {
          chain(streamId, () => pushUpTo(streamId, first, lastSeq, list));
        }
      }
      deliver(ready, readers);
    },

    onStored(listener) {
      storedListeners.add(listener);
      return () => storedListeners.delete(listener);
    },
    setConnectedUsers(filter) {
      connectedUsers = filter;
    },
    async idle() {
      await Promise.all([...streamChains.values()]);
    },
  };
}
