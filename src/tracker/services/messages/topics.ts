import {
  type CreateTopicRequest,
  MAX_FETCH_LIMIT,
  type MessagePage,
  type Subscription,
  TOPIC_RETENTION_DEFAULTS,
  type TopicList,
  type TopicSummary,
} from '../../../protocol/api.js';
import { CoterieError } from '../../../protocol/errors.js';
import { assertNewName } from '../../../protocol/names.js';
import { type ParsedStream, topicStreamId } from '../../../protocol/streams.js';
import { toNumber } from '../../store/index.js';
import type { ServiceDeps } from '../context.js';
import type { GroupsService } from '../groups.js';
import type { Directory } from './directory.js';
import { toStoredMessage } from './model.js';
import { messagesOf } from './queries.js';

const retentionOf = (row: {
  retention_count: number | string | null;
  retention_ms: number | string | null;
}) => ({
  retentionCount: row.retention_count === null ? 0 : toNumber(row.retention_count),
  retentionMs: row.retention_ms === null ? 0 : toNumber(row.retention_ms),
});

/**
 * Topics: made, listed, subscribed to, fetched from (a topic's messages are
 * kept for its retention, then trimmed; pushes go to subscribers only).
 */
export function createTopics(deps: ServiceDeps & { groups: GroupsService; directory: Directory }) {
  const { store, bus, now, groups, directory } = deps;
  const db = store.db;
  return {
    async createTopic(userId: string, groupId: string, request: CreateTopicRequest): Promise<TopicSummary> {
      assertNewName('topic', request.topic);
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

    async listTopics(userId: string, groupId: string): Promise<TopicList> {
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

    async subscribe(userId: string, groupId: string, topic: string, on: boolean): Promise<Subscription> {
      await groups.requireMember(userId, groupId);
      const row = await directory.topicRow(groupId, topic);
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
      directory.forgetSubscribers(row.stream_id);
      // The other trackers push this topic too: they drop their cached subscribers.
      await bus.publish({
        kind: 'subscription_changed',
        streamId: row.stream_id,
        userId,
        subscribed: on,
        at: now(),
      });
      return { groupId, topic, subscribed: on, lastSeq };
    },

    async fetch(
      userId: string,
      groupId: string,
      topic: string,
      from: number | undefined,
      limit: number | undefined,
    ): Promise<MessagePage> {
      await groups.requireMember(userId, groupId);
      const row = await directory.topicRow(groupId, topic);
      const n = Math.min(Math.max(limit ?? 100, 1), MAX_FETCH_LIMIT);
      const minAt = row.retention_ms === null ? 0 : now() - toNumber(row.retention_ms);
      const parsed: ParsedStream = { kind: 'topic', groupId, topic };
      const rows = await messagesOf(db, row.stream_id)
        .where('seq', '>=', from ?? 1)
        .where('created_at', '>=', minAt)
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

    /** Deletes topic messages beyond their retention (age, then count); returns how many. */
    async trim(): Promise<number> {
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
    },
  };
}
