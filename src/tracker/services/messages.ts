import { type Insertable, sql, type Transaction } from 'kysely';
import {
  type CreateTopicRequest,
  type DeliveryState,
  MAX_FETCH_LIMIT,
  type MessagePage,
  type MessageSent,
  type MessageStatus,
  type StoredMessage,
  type Subscription,
  TOPIC_RETENTION_DEFAULTS,
  type TopicList,
  type TopicSummary,
} from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import {
  directStreamId,
  groupStreamId,
  newTimeOrderedId,
  type ParsedStream,
  parseStreamId,
  topicStreamId,
} from '../../protocol/streams.js';
import type { Receipt } from '../events/bus.js';
import { type Prepared, prepared } from '../store/prepared.js';
import type { Database, MessagesTable } from '../store/schema.js';
import { toNumber } from '../store/schema.js';
import type { ServiceDeps } from './context.js';
import type { GroupsService } from './groups.js';
import { createSendLimiter } from './message-limits.js';

/**
 * Messages and topics over one model: streams numbered by sequence, cursors
 * per reader (see migration 0002). Sends and cursor moves go through one
 * write queue: whatever arrives while a transaction commits is written by
 * the next one, so under load a commit carries hundreds of messages (SQLite
 * commits, not inserts, are the cost). A send resolves only after its
 * transaction committed: Sent means stored.
 */
export interface SendInput {
  to?: string | undefined;
  groupId?: string | undefined;
  topic?: string | undefined;
  clientId: string;
  body: string;
}

export interface CursorInput {
  streamId: string;
  delivered?: number | undefined;
  read?: number | undefined;
}

/** A stored message with its JSON encoding, made once for every session it goes to. */
export interface EncodedMessage {
  message: StoredMessage;
  json: string;
}

export interface StoredBatch {
  messages: EncodedMessage[];
  /** Users who read each stream of the batch (the sender of a message is skipped when pushing). */
  readers: Map<string, readonly string[]>;
}

export interface MessagesService {
  /**
   * Checks and queues a send (resolves once queued, in call order); `committed`
   * settles once the message is stored. Wrapped in an object because promises
   * of promises flatten.
   */
  submit(userId: string, input: SendInput): Promise<{ committed: Promise<MessageSent> }>;
  send(userId: string, input: SendInput): Promise<MessageSent>;
  /** Checks and queues cursor moves (resolves once queued); `committed` resolves once written. */
  ack(userId: string, cursors: CursorInput[]): Promise<{ committed: Promise<void> }>;
  status(userId: string, messageId: string): Promise<MessageStatus>;
  createTopic(userId: string, groupId: string, request: CreateTopicRequest): Promise<TopicSummary>;
  listTopics(userId: string, groupId: string): Promise<TopicList>;
  subscribe(userId: string, groupId: string, topic: string, subscribe: boolean): Promise<Subscription>;
  fetch(
    userId: string,
    groupId: string,
    topic: string,
    from: number | undefined,
    limit: number | undefined,
  ): Promise<MessagePage>;
  /** Everything after the user's delivered cursors, in pages, in order per stream (own messages skipped). */
  catchUp(userId: string): AsyncGenerator<EncodedMessage[]>;
  onStored(listener: (batch: StoredBatch) => void): () => void;
  /**
   * Set by the session hub: which of these users have a session on this
   * tracker. A stream's first push starts from their delivered cursors.
   */
  setConnectedUsers(filter: (users: readonly string[]) => readonly string[]): void;
  onReceipts(listener: (receipts: Receipt[]) => void): () => void;
  /** Deletes topic messages beyond their retention; returns how many. */
  trim(): Promise<number>;
  /** Writes what is queued, stops the retention timer. */
  close(): Promise<void>;
}

export interface MessagesOptions {
  messageMaxBytes: number;
  messageRatePerSecond: number;
  messageBurst: number;
  /** How often expired topic messages are deleted. */
  retentionSweepMs: number;
  /** This tracker on the event bus: its own message events are pushed locally, not read back. */
  trackerId?: string | undefined;
}

/** Rows per multi-row INSERT: 7 columns × 500 stays far below SQLite's and PostgreSQL's variable limits. */
const INSERT_CHUNK = 256;

/**
 * Splits a list into power-of-two chunks (256, 128, …, 1). The SQL text of a
 * multi-row INSERT or an IN list depends on its length, and the store caches
 * prepared statements by text: with these sizes a handful of statements serve
 * every batch, instead of one new prepare (of thousands of parameters) per batch.
 */
function* powerOfTwoChunks<T>(items: readonly T[]): Generator<T[]> {
  let i = 0;
  while (i < items.length) {
    let size = INSERT_CHUNK;
    while (size > items.length - i) size >>= 1;
    yield items.slice(i, i + size);
    i += size;
  }
}
/** Messages per transaction: bounds a commit's latency under a flood. */
const MAX_BATCH = 4000;
const CATCH_UP_PAGE = 1000;
/** Receipts per bus event (each names its senders: a few hundred bytes at most). */
const RECEIPTS_PER_EVENT = 16;
/** Cursor moves that share a commit with sends; more get a transaction of their own. */
const RIDING_CURSORS = 64;

/** Orders [key, value] entries by key (rows locked in key order on every tracker). */
const byKey = <V>(a: [string, V], b: [string, V]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** One prepared query per chunk size (a power of two, so a handful of them). */
function bySize<R>(build: (n: number) => Prepared<R>): (n: number) => Prepared<R> {
  const cache = new Map<number, Prepared<R>>();
  return (n) => {
    let q = cache.get(n);
    if (q === undefined) {
      q = build(n);
      cache.set(n, q);
    }
    return q;
  };
}
const range = (n: number, f: (i: number) => never) => Array.from({ length: n }, (_, i) => f(i));

/**
 * The message path's queries, built and compiled once (store/prepared.ts): at
 * a steady pace each message costs a handful of them, and Kysely building a
 * query costs more than SQLite running it.
 */
const Q = {
  existing: bySize((n) =>
    prepared((db, p) =>
      db
        .selectFrom('messages')
        .select(['message_id', 'client_id', 'stream_id', 'seq', 'created_at'])
        .where('sender', '=', p(0))
        .where(
          'client_id',
          'in',
          range(n, (i) => p(i + 1)),
        ),
    ),
  ),
  bumpSeq: prepared((db, p) =>
    db
      .updateTable('streams')
      .set({ last_seq: sql<number>`last_seq + ${p(0)}` })
      .where('stream_id', '=', p(1))
      .returning('last_seq'),
  ),
  insertMessages: bySize((n) =>
    prepared((db, p) =>
      db.insertInto('messages').values(
        range(
          n,
          (i) =>
            ({
              stream_id: p(i * 7),
              seq: p(i * 7 + 1),
              message_id: p(i * 7 + 2),
              sender: p(i * 7 + 3),
              client_id: p(i * 7 + 4),
              body: p(i * 7 + 5),
              created_at: p(i * 7 + 6),
            }) as never,
        ),
      ),
    ),
  ),
  cursorsOf: bySize((n) =>
    prepared((db, p) =>
      db
        .selectFrom('cursors')
        .select(['user_id', 'delivered_seq', 'read_seq'])
        .where('stream_id', '=', p(0))
        .where(
          'user_id',
          'in',
          range(n, (i) => p(i + 1)),
        ),
    ),
  ),
  upsertCursors: bySize((n) =>
    prepared((db, p) =>
      db
        .insertInto('cursors')
        .values(
          range(
            n,
            (i) =>
              ({
                stream_id: p(i * 4),
                user_id: p(i * 4 + 1),
                delivered_seq: p(i * 4 + 2),
                read_seq: p(i * 4 + 3),
              }) as never,
          ),
        )
        .onConflict((oc) =>
          oc.columns(['stream_id', 'user_id']).doUpdateSet((eb) => ({
            delivered_seq: eb.ref('excluded.delivered_seq'),
            read_seq: eb.ref('excluded.read_seq'),
          })),
        ),
    ),
  ),
  sendersBetween: prepared((db, p) =>
    db
      .selectFrom('messages')
      .select(['seq', 'sender'])
      .where('stream_id', '=', p(0))
      .where('seq', '>', p(1))
      .where('seq', '<=', p(2)),
  ),
};

interface PendingSend {
  sender: string;
  streamId: string;
  stream: ParsedStream;
  clientId: string;
  body: string;
  resolve: (r: MessageSent) => void;
  reject: (e: Error) => void;
}

interface PendingCursor {
  streamId: string;
  userId: string;
  delivered: number;
  read: number;
  waiters: (() => void)[];
}

type Db = Transaction<Database>;

export function toStoredMessage(
  row: {
    stream_id: string;
    seq: number | string;
    message_id: string;
    sender: string;
    body: string;
    created_at: number | string;
  },
  parsed: ParsedStream,
): StoredMessage {
  const m: StoredMessage = {
    messageId: row.message_id,
    streamId: row.stream_id,
    seq: toNumber(row.seq),
    kind: parsed.kind,
    sender: row.sender,
    body: row.body,
    sentAt: toNumber(row.created_at),
  };
  if (parsed.kind === 'direct') m.to = parsed.users[0] === row.sender ? parsed.users[1] : parsed.users[0];
  else m.groupId = parsed.groupId;
  if (parsed.kind === 'topic') m.topic = parsed.topic;
  return m;
}

const encode = (message: StoredMessage): EncodedMessage => ({ message, json: JSON.stringify(message) });

export function createMessagesService(options: MessagesOptions) {
  return (deps: ServiceDeps & { groups: GroupsService }): MessagesService => {
    const { store, bus, now, groups } = deps;
    const db = store.db;
    const limiter = createSendLimiter({
      ratePerSecond: options.messageRatePerSecond,
      burst: options.messageBurst,
      now,
    });
    const storedListeners = new Set<(b: StoredBatch) => void>();
    const receiptListeners = new Set<(r: Receipt[]) => void>();

    // Caches that only save reads: users never disappear; streams, once created, stay.
    const knownUsers = new Set<string>();
    const knownStreams = new Set<string>();
    const members = new Map<string, readonly string[]>();
    const subscribers = new Map<string, readonly string[]>();
    const topicRetention = new Map<string, { count: number | null; ms: number | null }>();
    const trackerId = options.trackerId ?? newTimeOrderedId(now());
    /** Other trackers may write the same streams (PostgreSQL); with SQLite every commit is this tracker's. */
    const shared = store.postgresUrl !== undefined;
    let connectedUsers: (users: readonly string[]) => readonly string[] = () => [];
    const unsubscribeBus = bus.subscribe((e) => {
      if (e.kind === 'membership_changed') members.delete(e.groupId);
      else if (e.kind === 'subscription_changed') subscribers.delete(e.streamId);
      else if (e.kind === 'events_lost') {
        // Changes made meanwhile went unheard: read memberships and subscriptions again.
        members.clear();
        subscribers.clear();
      } else if (e.kind === 'messages_stored' && e.origin !== trackerId) {
        for (const r of e.streams) pushRemote(r.s, r.from, r.to);
      } else if (e.kind === 'receipts' && e.origin !== trackerId && e.receipts.length > 0) {
        for (const l of receiptListeners) l(e.receipts);
      }
    });

    // ------------------------------------------------------------ pushing, in order per stream

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

    /** The readers of a stream if known without a read (a push can then go out at once). */
    const cachedReadersOf = (streamId: string, parsed: ParsedStream): readonly string[] | undefined =>
      parsed.kind === 'direct'
        ? parsed.users
        : parsed.kind === 'group'
          ? members.get(parsed.groupId)
          : subscribers.get(streamId);

    async function readersByStream(stored: EncodedMessage[]): Promise<Map<string, readonly string[]>> {
      const readers = new Map<string, readonly string[]>();
      for (const m of stored) {
        const id = m.message.streamId;
        if (!readers.has(id)) readers.set(id, await readersOf(id, parseStreamId(id)!));
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
      const rows = await db
        .selectFrom('messages')
        .select(['stream_id', 'seq', 'message_id', 'sender', 'body', 'created_at'])
        .where('stream_id', '=', streamId)
        .where('seq', '>=', from)
        .where('seq', '<=', to)
        .orderBy('seq')
        .execute();
      return rows.map((r) => encode(toStoredMessage(r, parsed)));
    }

    /** Runs `job` after whatever is queued for this stream (reads of earlier ranges). */
    function chain(streamId: string, job: () => Promise<void>) {
      const prev = streamChains.get(streamId) ?? Promise.resolve();
      const next = prev
        .then(job)
        .catch(() => {
          // The store failed: the mark did not move, so the stream's next push reads these rows
          // again (and the sessions' next catch-up has them anyway).
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
      const here = connectedUsers(await readersOf(streamId, parsed));
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
      if (streamId.startsWith('t:') && read.length > 0) subscribers.delete(streamId);
      const stored = [...read, ...known];
      // Readers before the mark: if this read fails, the mark stays and the next push retries the range.
      const readers = await readersByStream(stored);
      // The reads are async: another job cannot run meanwhile (chained), so the mark is still ours.
      pushedTo.set(streamId, Math.max(pushedTo.get(streamId) ?? 0, to));
      deliver(stored, readers);
    }

    function pushRemote(streamId: string, from: number, to: number) {
      // Topic subscribers may have changed through another tracker: read them again for its messages.
      if (streamId.startsWith('t:')) subscribers.delete(streamId);
      chain(streamId, () => pushUpTo(streamId, from, to));
    }

    /**
     * This tracker's commits: pushed at once when they follow on from the last
     * push (always, with one tracker, once a stream was pushed) and the readers
     * are known; otherwise in order behind a read (the gap, the readers, or a
     * first push's start).
     */
    function pushLocal(stored: StoredMessage[]) {
      if (stored.length === 0) return;
      const byStream = new Map<string, EncodedMessage[]>();
      for (const m of stored) {
        const e = encode(m);
        const list = byStream.get(m.streamId);
        if (list === undefined) byStream.set(m.streamId, [e]);
        else list.push(e);
      }
      const ready: EncodedMessage[] = [];
      const readers = new Map<string, readonly string[]>();
      for (const [streamId, list] of byStream) {
        const first = list[0]!.message.seq;
        const lastSeq = list[list.length - 1]!.message.seq;
        const mark = pushedTo.get(streamId);
        const known = cachedReadersOf(streamId, parseStreamId(streamId)!);
        if (!streamChains.has(streamId) && mark === first - 1 && known !== undefined) {
          pushedTo.set(streamId, lastSeq);
          readers.set(streamId, known);
          for (const e of list) ready.push(e);
        } else {
          chain(streamId, () => pushUpTo(streamId, first, lastSeq, list));
        }
      }
      deliver(ready, readers);
    }

    const tooLarge = (bytes: number) =>
      new CoterieError(
        'MESSAGE_TOO_LARGE',
        `message of ${bytes} bytes exceeds the limit of ${options.messageMaxBytes} bytes: split it or share it as a file`,
      );

    async function requireUser(userId: string) {
      if (knownUsers.has(userId)) return;
      const row = await db
        .selectFrom('users')
        .select('user_id')
        .where('user_id', '=', userId)
        .executeTakeFirst();
      if (row === undefined) {
        throw new CoterieError('USER_NOT_FOUND', `no user '${userId}': check the user id`);
      }
      knownUsers.add(userId);
    }

    async function topicRow(groupId: string, topic: string) {
      const row = await db
        .selectFrom('streams')
        .selectAll()
        .where('stream_id', '=', topicStreamId(groupId, topic))
        .executeTakeFirst();
      if (row === undefined) {
        throw new CoterieError(
          'TOPIC_NOT_FOUND',
          `no topic '${topic}' in group '${groupId}': list_topics ${groupId} shows them, create_topic makes one`,
        );
      }
      return row;
    }

    async function requireTopic(groupId: string, topic: string) {
      const id = topicStreamId(groupId, topic);
      if (topicRetention.has(id)) return;
      const row = await topicRow(groupId, topic);
      topicRetention.set(id, {
        count: row.retention_count === null ? null : toNumber(row.retention_count),
        ms: row.retention_ms === null ? null : toNumber(row.retention_ms),
      });
      knownStreams.add(id);
    }

    async function membersOf(groupId: string): Promise<readonly string[]> {
      const cached = members.get(groupId);
      if (cached !== undefined) return cached;
      const rows = await db
        .selectFrom('memberships')
        .select('user_id')
        .where('group_id', '=', groupId)
        .execute();
      const list = rows.map((r) => r.user_id);
      members.set(groupId, list);
      return list;
    }

    async function subscribersOf(streamId: string): Promise<readonly string[]> {
      const cached = subscribers.get(streamId);
      if (cached !== undefined) return cached;
      const rows = await db
        .selectFrom('cursors')
        .select('user_id')
        .where('stream_id', '=', streamId)
        .execute();
      const list = rows.map((r) => r.user_id);
      subscribers.set(streamId, list);
      return list;
    }

    async function readersOf(streamId: string, parsed: ParsedStream): Promise<readonly string[]> {
      switch (parsed.kind) {
        case 'direct':
          return parsed.users;
        case 'group':
          return membersOf(parsed.groupId);
        case 'topic':
          return subscribersOf(streamId);
      }
    }

    /** May this user read (and acknowledge) this stream? */
    async function requireReader(userId: string, parsed: ParsedStream): Promise<void> {
      if (parsed.kind === 'direct') {
        if (!parsed.users.includes(userId)) {
          throw new CoterieError('NOT_FOUND', 'no such conversation: it is between two other users');
        }
        return;
      }
      await groups.requireMember(userId, parsed.groupId);
    }

    // ------------------------------------------------------------ the write queue

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

    const asStoreError = (err: unknown) =>
      err instanceof CoterieError
        ? err
        : new CoterieError('UNAVAILABLE', `the message store failed: ${(err as Error).message}; retry`, {
            cause: err,
          });

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
          for (const c of riders) pendingCursors.delete(`${c.streamId}\u0000${c.userId}`);
          const at = now();
          let written: { results: MessageSent[]; stored: StoredMessage[]; receipts: Receipt[] };
          try {
            written = await store.transaction(async (trx) => {
              const w = await writeMessages(trx, sends, at);
              return { ...w, receipts: riders.length > 0 ? await moveCursors(trx, riders, at) : [] };
            });
          } catch (err) {
            for (const s of sends) s.reject(asStoreError(err));
            for (const c of riders) for (const w of c.waiters) w();
            continue;
          }
          for (const c of riders) for (const w of c.waiters) w();
          if (written.receipts.length > 0) publishReceipts(written.receipts);
          for (const [i, s] of sends.entries()) {
            knownStreams.add(s.streamId);
            s.resolve(written.results[i]!);
          }
          if (written.stored.length > 0) {
            publishStored(written.stored, at);
            pushLocal(written.stored);
          }
        }
        if (pendingCursors.size > 0) {
          const cursors = [...pendingCursors.values()];
          pendingCursors.clear();
          const at = now();
          let receipts: Receipt[] = [];
          try {
            receipts = await store.transaction((trx) => moveCursors(trx, cursors, at));
          } catch {
            // Acknowledgements are repeated by peers after each reconnect: losing a batch only delays receipts.
          }
          for (const c of cursors) for (const w of c.waiters) w();
          if (receipts.length > 0) publishReceipts(receipts);
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

    /** Pushes receipts to this tracker's sessions and sends them to the others. */
    function publishReceipts(receipts: Receipt[]) {
      for (const l of receiptListeners) l(receipts);
      // A few per event: NOTIFY payloads are capped near 8000 bytes.
      for (let i = 0; i < receipts.length; i += RECEIPTS_PER_EVENT) {
        void bus.publish({
          kind: 'receipts',
          origin: trackerId,
          receipts: receipts.slice(i, i + RECEIPTS_PER_EVENT),
        });
      }
    }

    async function writeMessages(trx: Db, sends: PendingSend[], at: number) {
      const results: MessageSent[] = new Array(sends.length);
      const stored: StoredMessage[] = [];
      // 1. retried sends: answer with the first copy, found by (sender, client id)
      const keyOf = (s: PendingSend) => `${s.sender}\n${s.clientId}`;
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
        const key = keyOf(s);
        if (existing.has(key)) return;
        if (firstOfKey.has(key)) return; // the same id twice in one batch: the first wins
        firstOfKey.set(key, i);
        const list = byStream.get(s.streamId);
        if (list === undefined) byStream.set(s.streamId, [i]);
        else list.push(i);
      });
      const rows: Insertable<MessagesTable>[] = [];
      // Streams' rows are locked (bumped) in one order on every tracker: two trackers' batches
      // touching the same streams then wait for each other instead of deadlocking (which
      // PostgreSQL detects only after its deadlock_timeout, a second by default).
      for (const [streamId, idx] of [...byStream].sort(byKey)) {
        const first = sends[idx[0]!]!;
        if (!knownStreams.has(streamId)) await ensureStream(trx, streamId, first.stream, first.sender, at);
        const updated = (await Q.bumpSeq.execute(trx, [idx.length, streamId])).rows[0];
        if (updated === undefined) throw new CoterieError('INTERNAL', `stream ${streamId} is missing`);
        const last = toNumber(updated.last_seq);
        idx.forEach((i, k) => {
          const s = sends[i]!;
          const seq = last - idx.length + 1 + k;
          const messageId = newTimeOrderedId(at);
          rows.push({
            stream_id: streamId,
            seq,
            message_id: messageId,
            sender: s.sender,
            client_id: s.clientId,
            body: s.body,
            created_at: at,
          });
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
        const retention = topicRetention.get(streamId);
        if (retention?.count != null && last > retention.count) {
          await trx
            .deleteFrom('messages')
            .where('stream_id', '=', streamId)
            .where('seq', '<=', last - retention.count)
            .execute();
        }
      }
      for (const chunk of powerOfTwoChunks(rows)) {
        await Q.insertMessages(chunk.length).execute(
          trx,
          chunk.flatMap((r) => [
            r.stream_id,
            r.seq,
            r.message_id,
            r.sender,
            r.client_id,
            r.body,
            r.created_at,
          ]),
        );
      }
      sends.forEach((s, i) => {
        if (results[i] !== undefined) return;
        const prior = existing.get(keyOf(s)) ?? results[firstOfKey.get(keyOf(s))!]!;
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
          .values(
            parsed.users.map((u) => ({ stream_id: streamId, user_id: u, delivered_seq: 0, read_seq: 0 })),
          )
          .onConflict((oc) => oc.columns(['stream_id', 'user_id']).doNothing())
          .execute();
      }
    }

    /** Widest range of messages read at once to find senders; past it, one query per reader. */
    const SENDER_SCAN_MAX = 20_000;

    /**
     * Moves cursors forward (never back) and finds whom to tell: per stream,
     * one read of the old cursors, one upsert, one scan of the messages moved
     * past; a group's hundred acknowledgements cost three queries, not three hundred.
     */
    async function moveCursors(trx: Db, cursors: PendingCursor[], at: number): Promise<Receipt[]> {
      const byStream = new Map<string, PendingCursor[]>();
      for (const c of cursors) {
        const list = byStream.get(c.streamId);
        if (list === undefined) byStream.set(c.streamId, [c]);
        else list.push(c);
      }
      const receipts: Receipt[] = [];
      // In one order on every tracker, as the sends' streams: no deadlock between trackers.
      for (const [streamId, list] of [...byStream].sort(byKey)) {
        const old = new Map<string, { delivered: number; read: number }>();
        for (const chunk of powerOfTwoChunks(list)) {
          const rows = (
            await Q.cursorsOf(chunk.length).execute(trx, [streamId, ...chunk.map((c) => c.userId)])
          ).rows;
          for (const r of rows) {
            old.set(r.user_id, { delivered: toNumber(r.delivered_seq), read: toNumber(r.read_seq) });
          }
        }
        const moves: { userId: string; from: [number, number]; delivered: number; read: number }[] = [];
        for (const c of list) {
          const o = old.get(c.userId);
          // A topic cursor is a subscription: an acknowledgement never creates one.
          if (o === undefined && streamId.startsWith('t:')) continue;
          const oldDelivered = o?.delivered ?? 0;
          const oldRead = o?.read ?? 0;
          const read = Math.max(oldRead, c.read);
          // Read implies delivered.
          const delivered = Math.max(oldDelivered, c.delivered, read);
          if (delivered === oldDelivered && read === oldRead) continue;
          moves.push({ userId: c.userId, from: [oldDelivered, oldRead], delivered, read });
        }
        if (moves.length === 0) continue;
        moves.sort((x, y) => (x.userId < y.userId ? -1 : x.userId > y.userId ? 1 : 0));
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

    // ------------------------------------------------------------ the service

    async function resolveTarget(
      userId: string,
      input: SendInput,
    ): Promise<{ streamId: string; stream: ParsedStream }> {
      const targets = (input.to !== undefined ? 1 : 0) + (input.groupId !== undefined ? 1 : 0);
      if (targets !== 1 || (input.topic !== undefined && input.groupId === undefined)) {
        throw new CoterieError(
          'BAD_REQUEST',
          'name exactly one target: a user (to), a group (groupId), or a group and a topic (groupId, topic)',
        );
      }
      if (input.to !== undefined) {
        await requireUser(input.to);
        const streamId = directStreamId(userId, input.to);
        if (input.to === userId) {
          throw new CoterieError(
            'BAD_REQUEST',
            'a direct message needs another user: you cannot message yourself',
          );
        }
        return { streamId, stream: parseStreamId(streamId)! };
      }
      const groupId = input.groupId!;
      await groups.requireMember(userId, groupId);
      if (input.topic !== undefined) {
        await requireTopic(groupId, input.topic);
        return {
          streamId: topicStreamId(groupId, input.topic),
          stream: { kind: 'topic', groupId, topic: input.topic },
        };
      }
      return { streamId: groupStreamId(groupId), stream: { kind: 'group', groupId } };
    }

    async function submit(userId: string, input: SendInput): Promise<{ committed: Promise<MessageSent> }> {
      if (input.body.length === 0) throw new CoterieError('BAD_REQUEST', 'the message is empty');
      // Quick bound before counting bytes: UTF-8 takes at most 3 bytes per UTF-16 unit.
      const bytes = input.body.length * 3 <= options.messageMaxBytes ? 0 : Buffer.byteLength(input.body);
      if (bytes > options.messageMaxBytes) throw tooLarge(bytes);
      const { streamId, stream } = await resolveTarget(userId, input);
      const waitMs = limiter.take(userId);
      if (waitMs > 0) {
        throw new CoterieError(
          'RATE_LIMITED',
          `sending faster than ${options.messageRatePerSecond} messages/s: retry in ${waitMs} ms`,
          { details: { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) } },
        );
      }
      const done = new Promise<MessageSent>((resolve, reject) => {
        pendingSends.push({
          sender: userId,
          streamId,
          stream,
          clientId: input.clientId,
          body: input.body,
          resolve,
          reject,
        });
      });
      schedule();
      return { committed: done };
    }

    const retentionOf = (row: {
      retention_count: number | string | null;
      retention_ms: number | string | null;
    }) => ({
      retentionCount: row.retention_count === null ? 0 : toNumber(row.retention_count),
      retentionMs: row.retention_ms === null ? 0 : toNumber(row.retention_ms),
    });

    async function trim(): Promise<number> {
      const t = now();
      const topics = await db
        .selectFrom('streams')
        .select(['stream_id', 'last_seq', 'retention_count', 'retention_ms'])
        .where('kind', '=', 'topic')
        .execute();
      let removed = 0;
      for (const s of topics) {
        if (s.retention_ms !== null) {
          const r = await db
            .deleteFrom('messages')
            .where('stream_id', '=', s.stream_id)
            .where('created_at', '<', t - toNumber(s.retention_ms))
            .executeTakeFirst();
          removed += Number(r.numDeletedRows);
        }
        if (s.retention_count !== null) {
          const r = await db
            .deleteFrom('messages')
            .where('stream_id', '=', s.stream_id)
            .where('seq', '<=', toNumber(s.last_seq) - toNumber(s.retention_count))
            .executeTakeFirst();
          removed += Number(r.numDeletedRows);
        }
      }
      return removed;
    }
    const sweep = setInterval(() => {
      trim().catch(() => {
        // the next sweep tries again; fetch filters expired messages meanwhile
      });
    }, options.retentionSweepMs);
    // The sweep must not keep a process alive on its own; close() clears it.
    sweep.unref();

    return {
      submit,
      async send(userId, input) {
        return (await submit(userId, input)).committed;
      },

      async ack(userId, cursors) {
        const waits: Promise<void>[] = [];
        for (const c of cursors) {
          const parsed = parseStreamId(c.streamId);
          if (parsed === undefined) {
            throw new CoterieError('BAD_REQUEST', `'${c.streamId.slice(0, 80)}' is not a stream id`);
          }
          await requireReader(userId, parsed);
          const key = `${c.streamId}\u0000${userId}`;
          let p = pendingCursors.get(key);
          if (p === undefined) {
            p = { streamId: c.streamId, userId, delivered: 0, read: 0, waiters: [] };
            pendingCursors.set(key, p);
          }
          p.delivered = Math.max(p.delivered, c.delivered ?? 0);
          p.read = Math.max(p.read, c.read ?? 0);
          const entry = p;
          waits.push(new Promise<void>((resolve) => entry.waiters.push(resolve)));
        }
        schedule();
        return { committed: Promise.all(waits).then(() => {}) };
      },

      async status(userId, messageId) {
        const row = await db
          .selectFrom('messages')
          .select(['stream_id', 'seq', 'sender', 'created_at'])
          .where('message_id', '=', messageId)
          .executeTakeFirst();
        const notFound = () =>
          new CoterieError('MESSAGE_NOT_FOUND', `no message ${messageId} that you sent or may read`);
        if (row === undefined) throw notFound();
        const parsed = parseStreamId(row.stream_id)!;
        if (row.sender !== userId) {
          try {
            await requireReader(userId, parsed);
          } catch {
            throw notFound();
          }
        }
        const seq = toNumber(row.seq);
        const readers = (await readersOf(row.stream_id, parsed)).filter((u) => u !== row.sender);
        const cursorRows = await db
          .selectFrom('cursors')
          .select(['user_id', 'delivered_seq', 'read_seq'])
          .where('stream_id', '=', row.stream_id)
          .execute();
        const byUser = new Map(cursorRows.map((c) => [c.user_id, c]));
        const rank: Record<DeliveryState, number> = { sent: 0, delivered: 1, read: 2 };
        const recipients = readers.map((u) => {
          const c = byUser.get(u);
          const state: DeliveryState =
            c !== undefined && toNumber(c.read_seq) >= seq
              ? 'read'
              : c !== undefined && toNumber(c.delivered_seq) >= seq
                ? 'delivered'
                : 'sent';
          return { userId: u, state };
        });
        const state = recipients.reduce<DeliveryState>(
          (least, r) => (rank[r.state] < rank[least] ? r.state : least),
          recipients.length === 0 ? 'sent' : 'read',
        );
        return {
          messageId,
          streamId: row.stream_id,
          seq,
          kind: parsed.kind,
          sender: row.sender,
          sentAt: toNumber(row.created_at),
          state,
          recipients,
        };
      },

      async createTopic(userId, groupId, request) {
        await groups.requireMember(userId, groupId);
        const at = now();
        const retentionCount = request.retentionCount ?? TOPIC_RETENTION_DEFAULTS.count;
        const retentionMs = request.retentionMs ?? TOPIC_RETENTION_DEFAULTS.ms;
        const streamId = topicStreamId(groupId, request.topic);
        const r = await db
          .insertInto('streams')
          .values({
            stream_id: streamId,
            kind: 'topic',
            group_id: groupId,
            topic: request.topic,
            last_seq: 0,
            retention_count: retentionCount,
            retention_ms: retentionMs,
            created_by: userId,
            created_at: at,
          })
          .onConflict((oc) => oc.column('stream_id').doNothing())
          .executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) {
          throw new CoterieError(
            'TOPIC_EXISTS',
            `group '${groupId}' already has a topic '${request.topic}': subscribe to it, or pick another name`,
          );
        }
        return {
          groupId,
          topic: request.topic,
          createdBy: userId,
          createdAt: at,
          lastSeq: 0,
          retentionCount,
          retentionMs,
          subscribed: false,
        };
      },

      async listTopics(userId, groupId) {
        await groups.requireMember(userId, groupId);
        const rows = await db
          .selectFrom('streams')
          .selectAll()
          .where('group_id', '=', groupId)
          .where('kind', '=', 'topic')
          .orderBy('topic')
          .execute();
        const mine = new Set(
          (
            await db
              .selectFrom('cursors')
              .select('stream_id')
              .where('user_id', '=', userId)
              .where('stream_id', 'in', rows.length === 0 ? [''] : rows.map((r) => r.stream_id))
              .execute()
          ).map((r) => r.stream_id),
        );
        return {
          groupId,
          topics: rows.map((r) => ({
            groupId,
            topic: r.topic ?? '',
            createdBy: r.created_by,
            createdAt: toNumber(r.created_at),
            lastSeq: toNumber(r.last_seq),
            ...retentionOf(r),
            subscribed: mine.has(r.stream_id),
          })),
        };
      },

      async subscribe(userId, groupId, topic, on) {
        await groups.requireMember(userId, groupId);
        const row = await topicRow(groupId, topic);
        const lastSeq = toNumber(row.last_seq);
        if (on) {
          // From now on: what was published before is there to fetch, not to push.
          await db
            .insertInto('cursors')
            .values({ stream_id: row.stream_id, user_id: userId, delivered_seq: lastSeq, read_seq: lastSeq })
            .onConflict((oc) => oc.columns(['stream_id', 'user_id']).doNothing())
            .execute();
        } else {
          await db
            .deleteFrom('cursors')
            .where('stream_id', '=', row.stream_id)
            .where('user_id', '=', userId)
            .execute();
        }
        subscribers.delete(row.stream_id);
        // The other trackers push this topic too: they drop their cached subscribers.
        await bus.publish({ kind: 'subscription_changed', streamId: row.stream_id, at: now() });
        return { groupId, topic, subscribed: on, lastSeq };
      },

      async fetch(userId, groupId, topic, from, limit) {
        await groups.requireMember(userId, groupId);
        const row = await topicRow(groupId, topic);
        const n = Math.min(Math.max(limit ?? 100, 1), MAX_FETCH_LIMIT);
        const minAt = row.retention_ms === null ? 0 : now() - toNumber(row.retention_ms);
        const parsed: ParsedStream = { kind: 'topic', groupId, topic };
        const rows = await db
          .selectFrom('messages')
          .select(['stream_id', 'seq', 'message_id', 'sender', 'body', 'created_at'])
          .where('stream_id', '=', row.stream_id)
          .where('seq', '>=', from ?? 1)
          .where('created_at', '>=', minAt)
          .orderBy('seq')
          .limit(n)
          .execute();
        const first = await db
          .selectFrom('messages')
          .select((eb) => eb.fn.min<number | string>('seq').as('first'))
          .where('stream_id', '=', row.stream_id)
          .where('created_at', '>=', minAt)
          .executeTakeFirst();
        const lastSeq = toNumber(row.last_seq);
        const messages = rows.map((r) => toStoredMessage(r, parsed));
        return {
          groupId,
          topic,
          messages,
          nextSeq: messages.length > 0 ? messages[messages.length - 1]!.seq + 1 : Math.max(from ?? 1, 1),
          lastSeq,
          firstSeq: first?.first == null ? lastSeq + 1 : toNumber(first.first),
        };
      },

      async *catchUp(userId) {
        const cursorRows = await db
          .selectFrom('cursors')
          .select(['stream_id', 'delivered_seq'])
          .where('user_id', '=', userId)
          .execute();
        const positions = new Map(cursorRows.map((c) => [c.stream_id, toNumber(c.delivered_seq)]));
        const memberOf = await db
          .selectFrom('memberships')
          .select('group_id')
          .where('user_id', '=', userId)
          .execute();
        for (const g of memberOf) {
          const id = groupStreamId(g.group_id);
          if (!positions.has(id)) positions.set(id, 0);
        }
        for (const [streamId, start] of positions) {
          const parsed = parseStreamId(streamId);
          if (parsed === undefined) continue;
          let minAt = 0;
          if (parsed.kind === 'topic') {
            await requireTopic(parsed.groupId, parsed.topic).catch(() => {});
            const ms = topicRetention.get(streamId)?.ms;
            if (ms != null) minAt = now() - ms;
          }
          let pos = start;
          for (;;) {
            const rows = await db
              .selectFrom('messages')
              .select(['stream_id', 'seq', 'message_id', 'sender', 'body', 'created_at'])
              .where('stream_id', '=', streamId)
              .where('seq', '>', pos)
              .where('sender', '!=', userId)
              .where('created_at', '>=', minAt)
              .orderBy('seq')
              .limit(CATCH_UP_PAGE)
              .execute();
            if (rows.length === 0) break;
            pos = toNumber(rows[rows.length - 1]!.seq);
            yield rows.map((r) => encode(toStoredMessage(r, parsed)));
            if (rows.length < CATCH_UP_PAGE) break;
          }
        }
      },

      onStored(listener) {
        storedListeners.add(listener);
        return () => storedListeners.delete(listener);
      },
      setConnectedUsers(filter) {
        connectedUsers = filter;
      },
      onReceipts(listener) {
        receiptListeners.add(listener);
        return () => receiptListeners.delete(listener);
      },
      trim,
      async close() {
        clearInterval(sweep);
        unsubscribeBus();
        while (flushing !== undefined || scheduled || pendingSends.length > 0 || pendingCursors.size > 0) {
          if (flushing !== undefined) await flushing;
          else await new Promise((r) => setImmediate(r));
        }
        await Promise.all([...streamChains.values()]);
      },
    };
  };
}
