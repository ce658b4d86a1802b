import type { DeliveryState, MessageSent } from '../../../protocol/api.js';
import { CoterieError } from '../../../protocol/errors.js';
import {
  directStreamId,
  groupStreamId,
  newTimeOrderedId,
  type ParsedStream,
  parseStreamId,
  topicStreamId,
} from '../../../protocol/streams.js';
import { toNumber } from '../../store/index.js';
import type { ServiceDeps } from '../context.js';
import type { GroupsService } from '../groups.js';
import { createSendLimiter } from '../message-limits.js';
import { createCatchUp } from './catch-up.js';
import { createDirectory } from './directory.js';
import type { CursorInput, MessagesOptions, MessagesService, SendInput } from './model.js';
import { createPushPlanner } from './push.js';
import { createReceiptFanOut } from './receipts.js';
import { createTopics } from './topics.js';
import { createWriteQueue } from './write-queue.js';

/**
 * The service: checks a request (target, size, rate, who may read), then
 * hands it to the write queue, the topics or a read; wires the parts to the bus.
 */
export function createMessagesService(options: MessagesOptions) {
  return (deps: ServiceDeps & { groups: GroupsService }): MessagesService => {
    const { store, bus, now, groups } = deps;
    const db = store.db;
    const limiter = createSendLimiter({
      ratePerSecond: options.messageRatePerSecond,
      burst: options.messageBurst,
      now,
    });
    const trackerId = options.trackerId ?? newTimeOrderedId(now());
    const directory = createDirectory(db, groups);
    const receipts = createReceiptFanOut(bus, trackerId);
    // Other trackers may write the same streams (PostgreSQL); with SQLite every commit is this tracker's.
    const push = createPushPlanner({
      db,
      directory,
      shared: store.postgresUrl !== undefined,
      logger: options.logger,
    });
    const queue = createWriteQueue({
      ...{ store, bus, now, trackerId, directory, receipts, push },
      onBatchWritten: options.onBatchWritten,
    });
    const topics = createTopics({ store, bus, now, groups, directory });
    const catchUp = createCatchUp({ db, directory, now });
    const unsubscribeBus = bus.subscribe((e) => {
      if (e.kind === 'membership_changed') directory.forgetMembers(e.groupId);
      else if (e.kind === 'subscription_changed') directory.forgetSubscribers(e.streamId);
      else if (e.kind === 'events_lost') {
        // Changes made meanwhile went unheard: read memberships and subscriptions again.
        directory.forgetMemberships();
      } else if (e.kind === 'messages_stored' && e.origin !== trackerId) {
        for (const r of e.streams) push.pushRemote(r.s, r.from, r.to);
      } else if (e.kind === 'receipts' && e.origin !== trackerId && e.receipts.length > 0) {
        receipts.deliver(e.receipts);
      }
    });

    const tooLarge = (bytes: number) =>
      new CoterieError(
        'MESSAGE_TOO_LARGE',
        `message of ${bytes} bytes exceeds the limit of ${options.messageMaxBytes} bytes: split it or share it as a file`,
      );

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
        // Known users are checked without a turn of the microtask queue (a send's fast path).
        if (!directory.userKnown(input.to)) await directory.requireUser(input.to);
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
        await directory.requireTopic(groupId, input.topic);
        return {
          streamId: topicStreamId(groupId, input.topic),
          stream: { kind: 'topic', groupId, topic: input.topic },
        };
      }
      return { streamId: groupStreamId(groupId), stream: { kind: 'group', groupId } };
    }

    function checkBody(input: SendInput): void {
      if (input.body.length === 0) throw new CoterieError('BAD_REQUEST', 'the message is empty');
      // Quick bound before counting bytes: UTF-8 takes at most 3 bytes per UTF-16 unit.
      const bytes = input.body.length * 3 <= options.messageMaxBytes ? 0 : Buffer.byteLength(input.body);
      if (bytes > options.messageMaxBytes) throw tooLarge(bytes);
    }

    async function submit(userId: string, input: SendInput): Promise<{ committed: Promise<MessageSent> }> {
      checkBody(input);
      const { streamId, stream } = await resolveTarget(userId, input);
      return { committed: enqueue(userId, input, streamId, stream) };
    }

    function submitNow(userId: string, input: SendInput): { committed: Promise<MessageSent> } | undefined {
      // The checks of submit and resolveTarget, in the same order, for the one case needing no read.
      const to = input.to;
      if (to === undefined || input.groupId !== undefined || input.topic !== undefined) return undefined;
      if (!directory.userKnown(to)) return undefined;
      checkBody(input);
      if (to === userId) {
        throw new CoterieError(
          'BAD_REQUEST',
          'a direct message needs another user: you cannot message yourself',
        );
      }
      const streamId = directStreamId(userId, to);
      return { committed: enqueue(userId, input, streamId, parseStreamId(streamId)!) };
    }

    /** Past the checks of the message and its target: the sender's rate, then the write queue. */
    function enqueue(userId: string, input: SendInput, streamId: string, stream: ParsedStream) {
      const waitMs = limiter.take(userId);
      if (waitMs > 0) {
        throw new CoterieError(
          'RATE_LIMITED',
          `sending faster than ${options.messageRatePerSecond} messages/s: retry in ${waitMs} ms`,
          { details: { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) } },
        );
      }
      return queue.send({ sender: userId, streamId, stream, clientId: input.clientId, body: input.body });
    }

    function parseCursorStream(streamId: string): ParsedStream {
      const parsed = parseStreamId(streamId);
      if (parsed === undefined) {
        throw new CoterieError('BAD_REQUEST', `'${streamId.slice(0, 80)}' is not a stream id`);
      }
      return parsed;
    }

    /**
     * Queues checked cursor moves for the next commit of their lanes. With `wait`, the promise
     * resolves once all are written: one per frame, not one per cursor; without, none is made
     * (a peer's delivery acknowledgements at 1,000 members are 10,000 frames a second).
     */
    function queueCursors(
      userId: string,
      cursors: readonly CursorInput[],
      wait: boolean,
    ): Promise<void> | undefined {
      let written: (() => void) | undefined;
      const committed = !wait
        ? undefined
        : new Promise<void>((resolve) => {
            let left = cursors.length;
            if (left === 0) resolve();
            written = () => {
              if (--left === 0) resolve();
            };
          });
      for (const c of cursors) queue.addCursor(c.streamId, userId, c.delivered ?? 0, c.read ?? 0, written);
      queue.schedule();
      return committed;
    }

    const sweep = setInterval(() => {
      topics.trim().catch(() => {
        // the next sweep tries again; fetch filters expired messages meanwhile
      });
    }, options.retentionSweepMs);
    // The sweep must not keep a process alive on its own; close() clears it.
    sweep.unref();

    return {
      submit,
      submitNow,
      async send(userId, input) {
        return (await submit(userId, input)).committed;
      },

      async ack(userId, cursors) {
        for (const c of cursors) await directory.requireReader(userId, parseCursorStream(c.streamId));
        return { committed: queueCursors(userId, cursors, true)! };
      },

      ackNow(userId, cursors, wait) {
        // The checks of ack, in the same order, when none needs a read; all before any is queued,
        // so that a frame handed to `ack` instead is queued once.
        for (const c of cursors) {
          if (!directory.readerKnown(userId, parseCursorStream(c.streamId))) return undefined;
        }
        return { committed: queueCursors(userId, cursors, wait) };
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
            await directory.requireReader(userId, parsed);
          } catch {
            throw notFound();
          }
        }
        const seq = toNumber(row.seq);
        const readers = (await directory.readersOf(row.stream_id, parsed)).filter((u) => u !== row.sender);
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

      createTopic: topics.createTopic,
      listTopics: topics.listTopics,
      subscribe: topics.subscribe,
      fetch: topics.fetch,

      catchUp: catchUp.catchUp,
      between: catchUp.between,

      onStored: push.onStored,
      setConnectedUsers: push.setConnectedUsers,
      onReceipts: receipts.onReceipts,
      trim: topics.trim,
      async close() {
        clearInterval(sweep);
        unsubscribeBus();
        await queue.drain();
        await push.idle();
      },
    };
  };
}
