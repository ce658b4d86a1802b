import type { Kysely } from 'kysely';
import { groupStreamId, parseStreamId } from '../../../protocol/streams.js';
import type { Database } from '../../store/index.js';
import { toNumber } from '../../store/index.js';
import type { Directory } from './directory.js';
import { type EncodedMessage, encode, toStoredMessage } from './model.js';
import { messagesOf } from './queries.js';

const CATCH_UP_PAGE = 1000;

/** Reads the messages a user is sent, after their cursors or between two seqs of a stream. */
export interface CatchUpReader {
  /**
   * What a session missed, in pages: every stream the user reads past their
   * delivered cursor, and the channel of every group they belong to from its
   * start when they have no cursor there yet; their own messages left out, and
   * a topic's messages older than its retention too. `onPositions` hears
   * where each stream starts (the cursors) before the first page.
   */
  catchUp(
    userId: string,
    onPositions?: (positions: ReadonlyMap<string, number>) => void,
  ): AsyncGenerator<EncodedMessage[]>;
  /** A stream's messages with seqs in (after, before), chosen as catchUp chooses them. */
  between(userId: string, streamId: string, after: number, before: number): Promise<EncodedMessage[]>;
}

export function createCatchUp(deps: {
  db: Kysely<Database>;
  directory: Pick<Directory, 'requireTopic' | 'topicRetention'>;
  now: () => number;
}): CatchUpReader {
  const { db, directory, now } = deps;

  /** The oldest creation time a stream's catch-up sends (a topic's retention), or 0. */
  async function oldestSent(streamId: string, parsed: NonNullable<ReturnType<typeof parseStreamId>>) {
    if (parsed.kind !== 'topic') return 0;
    await directory.requireTopic(parsed.groupId, parsed.topic).catch(() => {});
    const ms = directory.topicRetention.get(streamId)?.ms;
    return ms == null ? 0 : now() - ms;
  }

  const othersAfter = (userId: string, streamId: string, after: number, minAt: number) =>
    messagesOf(db, streamId)
      .where('seq', '>', after)
      .where('sender', '!=', userId)
      .where('created_at', '>=', minAt);

  return {
    async *catchUp(userId, onPositions) {
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
      onPositions?.(positions);
      for (const [streamId, start] of positions) {
        const parsed = parseStreamId(streamId);
        if (parsed === undefined) continue;
        const minAt = await oldestSent(streamId, parsed);
        let pos = start;
        for (;;) {
          const rows = await othersAfter(userId, streamId, pos, minAt).limit(CATCH_UP_PAGE).execute();
          if (rows.length === 0) break;
          pos = toNumber(rows[rows.length - 1]!.seq);
          yield rows.map((r) => encode(toStoredMessage(r, parsed)));
          if (rows.length < CATCH_UP_PAGE) break;
        }
      }
    },

    async between(userId, streamId, after, before) {
      const parsed = parseStreamId(streamId);
      if (parsed === undefined || before <= after + 1) return [];
      const rows = await othersAfter(userId, streamId, after, await oldestSent(streamId, parsed))
        .where('seq', '<', before)
        .execute();
      return rows.map((r) => encode(toStoredMessage(r, parsed)));
    },
  };
}
