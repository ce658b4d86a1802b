import { createBackoff } from '../../core/backoff.js';
import type {
  MessagePage,
  MessageSent,
  MessageStatus,
  SendMessageRequest,
  StoredMessage,
  Subscription,
  TopicList,
  TopicSummary,
} from '../../protocol/api.js';
import {
  inboxFields,
  type MarkReadResult,
  type PendingSendView,
  type SendAnswer,
  type SentMessage,
  type ShowMessagesResult,
  type ShowSentResult,
} from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { type ClientMessage, MAX_SESSION_FRAME_BYTES, type MessagingEvent } from '../../protocol/session.js';
import { directStreamId, groupStreamId, newTimeOrderedId } from '../../protocol/streams.js';
import { PEER_DEFAULTS } from '../config.js';
import type { CommandContext } from '../control/index.js';
import type { Notice, PeerEvent } from '../notices.js';
import type { InboxMessage, OutboxRecord, PeerStore } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { TrackerSession } from '../tracker/session.js';
import { createAckWindow } from './ack-window.js';

/**
 * The peer's side of messaging: the inbox (each pushed message stored once,
 * then acknowledged so the tracker's delivered cursor moves), the outbox
 * (sends retried with the same client id), read marks, receipts, topics.
 */
export type MessageCommands = Pick<
  CommandContext,
  | 'sendMessage'
  | 'showMessages'
  | 'showSent'
  | 'markRead'
  | 'messageStatus'
  | 'createTopic'
  | 'listTopics'
  | 'subscribe'
  | 'fetchMessages'
>;

export interface MessagingService extends MessageCommands {
  /** From the tracker session: messages, end of catch-up, receipts. */
  onSessionMessaging(event: MessagingEvent): void;
  /** The daemon is stopping: calls still in flight leave the outbox as it is (the store closes next). */
  stop(): void;
}

export interface MessagingDeps {
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  userId: () => string;
  notify: (kind: Notice['kind'], text: string) => void;
  /** The typed event stream of the daemon. */
  onEvent?: (event: PeerEvent) => void;
  /** The first wait before pending sends are tried again while connected, doubling to `max`. */
  resendBackoffMs?: { first: number; max: number };
  /** Acknowledgements of pushed messages that follow one another within this are merged (ack-window.ts). */
  deliveryAckWindowMs?: number;
}

const RESEND_BACKOFF_MS = { first: 1_000, max: 30_000 };
/** A send over the session unanswered this long stays pending (as an HTTP call that times out). */
const SEND_TIMEOUT_MS = PEER_DEFAULTS.trackerCallTimeoutMs;

/** The waits between tries of pending sends: core/backoff's doubling, without jitter (one peer's outbox). */
const resendBackoff = (o: { first: number; max: number }) =>
  createBackoff({ baseMs: o.first, maxMs: o.max, factor: 2, jitter: 0 });

/** Messages are shown in full; a notice shows the start of a long one. */
const NOTICE_CHARS = PEER_DEFAULTS.messageNoticeChars;
const SHOW_LIMIT = PEER_DEFAULTS.showMessagesLimit;
/** `show_messages --unread` pages this many, oldest first, unless `--limit N`. */
export const UNREAD_PAGE = PEER_DEFAULTS.unreadPageSize;

/**
 * Whether a failed send was refused by a tracker that heard it (USER_NOT_FOUND, NOT_A_MEMBER,
 * MESSAGE_TOO_LARGE…): only then does it leave the outbox. No tracker answering, one shutting
 * down, or a call cut off (a plain Error: the tracker was lost mid-call, the daemon is stopping)
 * keeps it pending for the next catch-up, which sends it with the same client id.
 */
const isRefusal = (err: unknown) =>
  err instanceof CoterieError && !['TRACKER_UNAVAILABLE', 'UNAVAILABLE', 'INTERNAL'].includes(err.code);

function headline(m: StoredMessage | InboxMessage): string {
  const text = m.body.length > NOTICE_CHARS ? `${m.body.slice(0, NOTICE_CHARS)}…` : m.body;
  if (m.kind === 'direct') return `[${m.sender}] ${text}`;
  if (m.kind === 'group') return `[${m.groupId}] ${m.sender}: ${text}`;
  return `[${m.groupId}/${m.topic}] ${m.sender}: ${text}`;
}

type Receipt = { streamId: string; reader: string; delivered: number; read: number };

/** A sent message with its mark: the furthest its readers' receipts reach (the reader list for a group). */
export function sentView(r: OutboxRecord, receipts: readonly Receipt[]): SentMessage {
  const mine = receipts.filter((x) => x.streamId === r.streamId && r.seq !== null);
  const deliveredTo = mine.filter((x) => x.delivered >= r.seq! || x.read >= r.seq!).map((x) => x.reader);
  const readBy = mine.filter((x) => x.read >= r.seq!).map((x) => x.reader);
  return {
    messageId: r.messageId,
    clientId: r.clientId,
    streamId: r.streamId,
    seq: r.seq,
    kind: r.to === null ? 'group' : 'direct',
    to: r.to,
    groupId: r.groupId,
    body: r.body,
    sentAt: r.createdAt,
    mark:
      r.state === 'pending'
        ? 'pending'
        : readBy.length > 0
          ? 'read'
          : deliveredTo.length > 0
            ? 'delivered'
            : 'sent',
    deliveredTo,
    readBy,
  };
}

/** The streams of one conversation (a user's, or a group's channel); undefined: all of them. */
function streamsOf(me: string, filter: { userId?: string; groupId?: string }): string[] | undefined {
  if (filter.userId !== undefined) return [directStreamId(me, filter.userId)];
  return filter.groupId === undefined ? undefined : [groupStreamId(filter.groupId)];
}

export function createMessagingService(deps: MessagingDeps): MessagingService {
  const { store, http, session } = deps;

  /**
   * Tells the tracker how far this peer has stored and read; harmless to repeat, so unanswered
   * (its effect shows as receipts): one not sent, or lost with its session, is repeated after the
   * next catch-up.
   */
  const ackCursors = (cursors: { streamId: string; delivered?: number; read?: number }[]) => {
    for (let i = 0; i < cursors.length; i += 1000) {
      session.post({ type: 'ack_messages', cursors: cursors.slice(i, i + 1000) } as Omit<
        ClientMessage,
        'id'
      >);
    }
  };

  const deliveryAcks = createAckWindow(
    deps.deliveryAckWindowMs ?? PEER_DEFAULTS.deliveryAckWindowMs,
    ackCursors,
  );

  const onMessages = (items: StoredMessage[]) => {
    const fresh = store.inbox.add(items.map(inboxFields), Date.now());
    // Stored (committed) before acknowledged: a crash in between means a resend, never a loss.
    deliveryAcks.add(items.map((m) => ({ streamId: m.streamId, delivered: m.seq })));
    for (const m of fresh) deps.notify('message', headline(m));
    if (deps.onEvent !== undefined) {
      const freshIds = new Set(fresh.map((m) => m.messageId));
      for (const m of items)
        if (freshIds.has(m.messageId)) deps.onEvent({ type: 'messageReceived', message: m });
    }
  };

  const sentEvent = (r: OutboxRecord) =>
    deps.onEvent?.({ type: 'messageSent', message: sentView(r, store.outbox.receipts([r.streamId])) });

  // Lost after being connected. Before a first connection (just started, just logged in) a send
  // tries HTTP, which gives up at once when no tracker ever answered.
  let away = false;
  let stopped = false;
  session.on('disconnected', () => {
    away = true;
  });
  session.on('connected', () => {
    away = false;
  });

  /**
   * One try at handing a send to the tracker: over the session when it is up (the tracker's fast
   * path, one frame, no HTTP request), else by HTTP. Either way the tracker stores a client id
   * once, so a try cut off before its answer is safe to repeat.
   */
  const deliver = async (body: SendMessageRequest): Promise<MessageSent> => {
    // A body whose frame could pass the session's frame cap goes by HTTP, which refuses it with
    // its code: the tracker drops such a frame unanswered, or closes the session (then the resend
    // would close the next one). JSON spells a UTF-16 unit in at most 6 bytes.
    const fits = body.body.length * 6 + 4096 <= MAX_SESSION_FRAME_BYTES;
    if (session.state !== 'connected' || !fits) return http.call('sendMessage', { body });
    const answer = await session.request(
      { type: 'send', ...body } as Omit<ClientMessage, 'id'>,
      SEND_TIMEOUT_MS,
    );
    if (answer.type !== 'sent')
      throw new CoterieError('INTERNAL', `the tracker answered a send with ${answer.type}`);
    const { type: _type, id: _id, ...sent } = answer;
    return sent;
  };

  const send = async (request: Omit<SendMessageRequest, 'clientId'>): Promise<SendAnswer> => {
    const me = deps.userId();
    const clientId = newTimeOrderedId();
    const streamId =
      request.to !== undefined
        ? directStreamId(me, request.to)
        : request.topic !== undefined
          ? `t:${request.groupId}:${request.topic}`
          : groupStreamId(request.groupId!);
    const record = {
      messageId: null,
      clientId,
      streamId,
      seq: null,
      to: request.to ?? null,
      groupId: request.groupId ?? null,
      topic: request.topic ?? null,
      body: request.body,
      state: 'pending' as const,
      createdAt: Date.now(),
    };
    // Kept before anything is tried: whatever happens next, the next catch-up sends it (same client id).
    store.outbox.put(record);
    if (record.topic === null) sentEvent(record);
    const target = {
      ...(request.to === undefined ? {} : { to: request.to }),
      ...(request.groupId === undefined ? {} : { groupId: request.groupId }),
      ...(request.topic === undefined ? {} : { topic: request.topic }),
    };
    const pending = (): PendingSendView => ({ id: null, state: 'pending', clientId, streamId, ...target });
    // The session lost its tracker: waiting for one (the HTTP client's failover patience, tens
    // of seconds) would hold the user's prompt; the session's next catch-up sends it instead.
    if (away && session.state !== 'connected') return pending();
    let sent: MessageSent;
    try {
      sent = await deliver({ ...request, clientId });
    } catch (err) {
      if (stopped || !isRefusal(err)) {
        // The session may stay connected (a tracker that answered UNAVAILABLE, a store failing
        // over): no catch-up would come to send it, so it is tried again on a timer as well.
        scheduleResend();
        return pending();
      }
      store.outbox.remove(clientId);
      throw err;
    }
    const stored = { ...record, messageId: sent.messageId, seq: sent.seq, state: 'sent' as const };
    store.outbox.put(stored);
    if (record.topic === null) sentEvent(stored);
    return {
      id: sent.messageId,
      state: 'sent',
      streamId: sent.streamId,
      seq: sent.seq,
      ...target,
      duplicate: sent.duplicate,
    };
  };

  /** Sends left pending (no tracker answered) go out again with their client id: stored once whatever happened. */
  let resending = false;
  const backoff = resendBackoff(deps.resendBackoffMs ?? RESEND_BACKOFF_MS);
  /** Timed tries since the outbox was last emptied: the next wait is backoff.delayMs(this + 1). */
  let resendTries = 0;
  let resendTimer: NodeJS.Timeout | undefined;
  /** Tries the pending sends again after a doubling wait (a catch-up tries them at once too). */
  const scheduleResend = () => {
    if (stopped || resendTimer !== undefined) return;
    resendTries++;
    resendTimer = setTimeout(() => {
      resendTimer = undefined;
      void resendPending();
    }, backoff.delayMs(resendTries));
    resendTimer.unref();
  };
  const resendPending = async () => {
    if (stopped) return;
    if (resending) {
      // A pass is running, and may have read the outbox before this send was put in it.
      scheduleResend();
      return;
    }
    resending = true;
    try {
      for (const r of store.outbox.pending()) {
        const body: SendMessageRequest = {
          ...(r.to === null ? {} : { to: r.to }),
          ...(r.groupId === null ? {} : { groupId: r.groupId }),
          ...(r.topic === null ? {} : { topic: r.topic }),
          clientId: r.clientId,
          body: r.body,
        };
        try {
          const sent = await deliver(body);
          if (stopped) return; // the store is closing: the tracker has it; the next start resends the same client id
          const stored = { ...r, messageId: sent.messageId, seq: sent.seq, state: 'sent' as const };
          store.outbox.put(stored);
          if (r.topic === null) sentEvent(stored);
          deps.notify('message', `sent your pending message ${sent.messageId}`);
        } catch (err) {
          if (stopped) return;
          if (!isRefusal(err)) break; // still unreachable: tried again on the timer and at the next catch-up
          store.outbox.remove(r.clientId);
          deps.notify('message', `a pending message could not be sent: ${(err as Error).message}`);
        }
      }
    } finally {
      resending = false;
    }
    // Whatever is still pending (unreachable, or put in the outbox during the pass) waits its turn.
    if (store.outbox.pending().length > 0) scheduleResend();
    else resendTries = 0;
  };

  return {
    stop() {
      stopped = true;
      clearTimeout(resendTimer);
      deliveryAcks.stop();
    },
    onSessionMessaging(event) {
      switch (event.type) {
        case 'messages':
          onMessages(event.items);
          return;
        case 'synced':
          // After catch-up, repeat our read marks: a read made while offline reaches the tracker now.
          ackCursors(store.inbox.cursors());
          void resendPending();
          return;
        case 'receipt': {
          const moved = store.outbox.putReceipt(event.streamId, event.reader, event.delivered, event.read);
          if (moved) {
            deps.onEvent?.({
              type: 'receipt',
              streamId: event.streamId,
              reader: event.reader,
              delivered: event.delivered,
              read: event.read,
            });
          }
          if (moved && event.streamId.startsWith('d:')) {
            deps.notify(
              'receipt',
              event.read >= event.delivered
                ? `'${event.reader}' read your messages`
                : `your messages reached '${event.reader}'`,
            );
          }
          return;
        }
      }
    },

    sendMessage: (target, text) =>
      send('to' in target ? { to: target.to, body: text } : { ...target, body: text }),

    async showMessages(filter): Promise<ShowMessagesResult> {
      const me = deps.userId();
      const streamIds = streamsOf(me, filter);
      const which = { ...(streamIds === undefined ? {} : { streamIds }), unread: filter.unread };
      // Unread ones are a page, oldest first: the next page goes on where this one stopped.
      const messages = store.inbox.list({
        ...which,
        limit: filter.limit ?? (filter.unread ? UNREAD_PAGE : SHOW_LIMIT),
        oldestFirst: filter.unread,
      });
      const unreadLeft = filter.unread ? store.inbox.count(which) - messages.length : undefined;
      const unread = filter.peek === true ? [] : messages.filter((m) => m.readAt === null);
      if (unread.length > 0) {
        store.inbox.markRead(
          unread.map((m) => m.messageId),
          Date.now(),
        );
        const upTo = new Map<string, number>();
        for (const m of unread) upTo.set(m.streamId, Math.max(upTo.get(m.streamId) ?? 0, m.seq));
        ackCursors([...upTo].map(([streamId, read]) => ({ streamId, read })));
      }
      return { me, messages, ...(unreadLeft === undefined ? {} : { unreadLeft }) };
    },

    async markRead(messageId): Promise<MarkReadResult> {
      const upTo = store.inbox.markReadUpTo(messageId, Date.now());
      if (upTo === undefined) throw new CoterieError('MESSAGE_NOT_FOUND', `no received message ${messageId}`);
      ackCursors([{ streamId: upTo.streamId, read: upTo.seq }]);
      return upTo;
    },

    async showSent(filter): Promise<ShowSentResult> {
      const me = deps.userId();
      const streamIds = streamsOf(me, filter);
      const sent = store.outbox.sent({
        ...(streamIds === undefined ? {} : { streamIds }),
        limit: filter.limit ?? SHOW_LIMIT,
      });
      const receipts = store.outbox.receipts([...new Set(sent.map((r) => r.streamId))]);
      return { me, messages: sent.map((r) => sentView(r, receipts)) };
    },

    messageStatus: (messageId): Promise<MessageStatus> =>
      http.call('messageStatus', { params: { messageId } }),

    createTopic: (groupId, topic): Promise<TopicSummary> =>
      http.call('createTopic', { params: { groupId }, body: { topic } }),

    listTopics: (groupId): Promise<TopicList> => http.call('listTopics', { params: { groupId } }),

    subscribe: (groupId, topic, on): Promise<Subscription> =>
      http.call(on ? 'subscribe' : 'unsubscribe', { params: { groupId, topic } }),

    fetchMessages: (groupId, topic, from, limit): Promise<MessagePage> =>
      http.call('fetchMessages', {
        params: { groupId, topic },
        query: {
          ...(from === undefined ? {} : { from: String(from) }),
          ...(limit === undefined ? {} : { limit: String(limit) }),
        },
      }),
  };
}
