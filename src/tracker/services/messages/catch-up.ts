import type { Kysely } from 'kysely';
import { groupStreamId, parseStreamId } from '../../../protocol/streams.js';
import type { Database } from '../../store/index.js';
import { toNumber } from '../../store/index.js';
import type { Directory } from './directory.js';
import { type EncodedMessage, encode, toStoredMessage } from './model.js';
import { messagesOf } from './queries.js';

const CATCH_UP_PAGE = 1000;

/**
 * What a session missed, in pages: every stream the user reads past their
 * delivered cursor, and the channel of every group they belong to from its
 * start when they have no cursor there yet; their own messages left out, and
 * a topic's messages older than its retention too.
 */
export function createCatchUp(deps: {
  db: Kysely<Database>;
  directory: Pick<Directory, 'requireTopic' | 'topicRetention'>;
  now: () => number;
}): (userId: string) => AsyncGenerator<EncodedMessage[]> {
  const { db, directory, now } = deps;
  return async function* catchUp(userId) {
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
        await directory.requireTopic(parsed.groupId, parsed.topic).catch(() => {});
        const ms = directory.topicRetention.get(streamId)?.ms;
        if (ms != null) minAt = now() - ms;
      }
      let pos = start;
      for (;;) {
        const rows = await messagesOf(db, streamId)
          .where('seq', '>', pos)
          .where('sender', '!=', userId)
          .where('created_at', '>=', minAt)
          .limit(CATCH_UP_PAGE)
          .execute();
        if (rows.length === 0) break;
        pos = toNumber(rows[rows.length - 1]!.seq);
        yield rows.map((r) => encode(toStoredMessage(r, parsed)));
        if (rows.length < CATCH_UP_PAGE) break;
      }
    }
  };
}
