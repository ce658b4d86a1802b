import type { Kysely, Selectable } from 'kysely';
import { CoterieError } from '../../../protocol/errors.js';
import { type ParsedStream, topicStreamId } from '../../../protocol/streams.js';
import type { Database, StreamsTable } from '../../store/index.js';
import { toNumber } from '../../store/index.js';
import type { GroupsService } from '../groups.js';
import { userExists } from '../users.js';

/** A topic's retention as stored: null where it has none. */
export interface TopicRetention {
  count: number | null;
  ms: number | null;
}

/**
 * Who and what exists, and who reads which stream: users, topics, group
 * members and topic subscribers, each read once and cached. The checks a send
 * or an acknowledgement makes before it is queued, and the readers a push goes to.
 */
export interface Directory {
  /** Is this stream known to exist? A send to one skips creating it. */
  streamKnown(streamId: string): boolean;
  /** A stream a committed write created or used: it exists from now on (streams are never deleted). */
  noteStream(streamId: string): void;
  /** Topics checked so far, by stream id. */
  readonly topicRetention: ReadonlyMap<string, TopicRetention>;
  /** Is this user known to exist (checked before, without a read)? */
  userKnown(userId: string): boolean;
  requireUser(userId: string): Promise<void>;
  /** The topic's stream row; TOPIC_NOT_FOUND when there is none. */
  topicRow(groupId: string, topic: string): Promise<Selectable<StreamsTable>>;
  requireTopic(groupId: string, topic: string): Promise<void>;
  readersOf(streamId: string, parsed: ParsedStream): Promise<readonly string[]>;
  /** The readers of a stream if known without a read (a push can then go out at once). */
  cachedReadersOf(streamId: string, parsed: ParsedStream): readonly string[] | undefined;
  /** May this user read (and acknowledge) this stream? */
  requireReader(userId: string, parsed: ParsedStream): Promise<void>;
  /**
   * `requireReader` without a read: true when the user may read the stream, false when that needs
   * a read (a topic, a group not cached or a member not in the cached list); throws as
   * `requireReader` would for another pair's conversation.
   */
  readerKnown(userId: string, parsed: ParsedStream): boolean;
  forgetMembers(groupId: string): void;
  forgetSubscribers(streamId: string): void;
  /** Changes went unheard: read memberships and subscriptions again. */
  forgetMemberships(): void;
}

export function createDirectory(db: Kysely<Database>, groups: GroupsService): Directory {
  // Caches that only save reads: users never disappear; streams, once created, stay.
  const knownUsers = new Set<string>();
  const knownStreams = new Set<string>();
  const members = new Map<string, readonly string[]>();
  const subscribers = new Map<string, readonly string[]>();
  const topicRetention = new Map<string, TopicRetention>();
  /** The cached member lists as sets, made on first use: an acknowledgement's check is one lookup. */
  const memberSets = new WeakMap<readonly string[], ReadonlySet<string>>();
  /**
   * Bumped by every forget: a read that was under way when the list changed
   * may hold the old list, so it is used once but not cached (or a later
   * push would keep missing the new reader until the next change).
   */
  let forgets = 0;

  async function requireUser(userId: string) {
    if (knownUsers.has(userId)) return;
    if (!(await userExists(db, userId))) {
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
    const before = forgets;
    const rows = await db
      .selectFrom('memberships')
      .select('user_id')
      .where('group_id', '=', groupId)
      .execute();
    const list = rows.map((r) => r.user_id);
    if (forgets === before) members.set(groupId, list);
    return list;
  }

  async function subscribersOf(streamId: string): Promise<readonly string[]> {
    const cached = subscribers.get(streamId);
    if (cached !== undefined) return cached;
    const before = forgets;
    const rows = await db.selectFrom('cursors').select('user_id').where('stream_id', '=', streamId).execute();
    const list = rows.map((r) => r.user_id);
    if (forgets === before) subscribers.set(streamId, list);
    return list;
  }

  function readerKnown(userId: string, parsed: ParsedStream): boolean {
    if (parsed.kind === 'direct') {
      if (!parsed.users.includes(userId)) {
        throw new CoterieError('NOT_FOUND', 'no such conversation: it is between two other users');
      }
      return true;
    }
    const list = members.get(parsed.groupId);
    if (list === undefined) return false;
    let set = memberSets.get(list);
    if (set === undefined) {
      set = new Set(list);
      memberSets.set(list, set);
    }
    return set.has(userId);
  }

  return {
    streamKnown: (streamId) => knownStreams.has(streamId),
    userKnown: (userId) => knownUsers.has(userId),
    noteStream: (streamId) => {
      knownStreams.add(streamId);
    },
    topicRetention,
    requireUser,
    topicRow,
    requireTopic,
    async readersOf(streamId, parsed) {
      switch (parsed.kind) {
        case 'direct':
          return parsed.users;
        case 'group':
          return membersOf(parsed.groupId);
        case 'topic':
          return subscribersOf(streamId);
      }
    },
    cachedReadersOf: (streamId, parsed) =>
      parsed.kind === 'direct'
        ? parsed.users
        : parsed.kind === 'group'
          ? members.get(parsed.groupId)
          : subscribers.get(streamId),
    async requireReader(userId, parsed) {
      // A group's member list, while cached, is whom its messages are pushed to (dropped by the
      // same membership events): a reader there may acknowledge what it was pushed without a read
      // of its standing per acknowledgement (a group of 1,000 acknowledges 1,000 times a message).
      if (readerKnown(userId, parsed) || parsed.kind === 'direct') return;
      await groups.requireMember(userId, parsed.groupId);
    },
    readerKnown,
    forgetMembers(groupId) {
      forgets++;
      members.delete(groupId);
    },
    forgetSubscribers(streamId) {
      forgets++;
      subscribers.delete(streamId);
    },
    forgetMemberships() {
      forgets++;
      members.clear();
      subscribers.clear();
    },
  };
}
