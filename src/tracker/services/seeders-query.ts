import { sql } from 'kysely';
import { currentQuality, type QualityPolicy } from '../../core/index.js';
import type { Seeder } from '../../protocol/api.js';
import type { Store } from '../store/index.js';
import { parseAddresses } from './presence.js';
import { storedScore } from './quality.js';

/** Live seeders of one file in one group, at most this many listed. */
export const MAX_SEEDERS_LISTED = 200;

/**
 * The live seeders of a file in a group, best first, flagged ones last: the
 * peers connected now and announcing it that either share it there (their
 * user's share) or keep a verified replica of it for the group (a storage
 * peer whose user is still a member, issue 16).
 */
export async function liveSeedersInStore(
  db: Store['db'],
  groupId: string,
  fileId: string,
  now: number,
  policy: QualityPolicy,
): Promise<Seeder[]> {
  // Who may serve it: its sharers in the group, storage peers (of members) holding a verified
  // replica, and members downloading it who serve the pieces they verified (partial seeders).
  const holders = db
    .selectFrom('shares')
    .select(['peer_id', 'user_id', sql<number>`0`.as('partial')])
    .where('group_id', '=', groupId)
    .where('file_id', '=', fileId)
    .union(
      db
        .selectFrom('replicas as r')
        .innerJoin('storage_offers as o', (j) =>
          j.onRef('o.group_id', '=', 'r.group_id').onRef('o.peer_id', '=', 'r.peer_id'),
        )
        .innerJoin('memberships as m', (j) =>
          j.onRef('m.group_id', '=', 'o.group_id').onRef('m.user_id', '=', 'o.user_id'),
        )
        .select(['r.peer_id', 'o.user_id', sql<number>`0`.as('partial')])
        .where('r.group_id', '=', groupId)
        .where('r.file_id', '=', fileId)
        .where('r.state', '=', 'held'),
    )
    .union(
      db
        .selectFrom('presence_files as af')
        .innerJoin('presence as ap', 'ap.peer_id', 'af.peer_id')
        .innerJoin('memberships as am', (j) =>
          j.onRef('am.user_id', '=', 'ap.user_id').on('am.group_id', '=', groupId),
        )
        .select(['af.peer_id', 'ap.user_id', sql<number>`1`.as('partial')])
        .where('af.file_id', '=', fileId),
    );
  // …that are connected now as that user and announce the file.
  const rows = await db
    .selectFrom(holders.as('h'))
    .innerJoin('presence as p', (j) =>
      j.onRef('p.peer_id', '=', 'h.peer_id').onRef('p.user_id', '=', 'h.user_id'),
    )
    .innerJoin('presence_files as pf', (j) =>
      j.onRef('pf.peer_id', '=', 'h.peer_id').on('pf.file_id', '=', fileId),
    )
    .leftJoin('peer_scores as q', 'q.peer_id', 'h.peer_id')
    .select(['h.peer_id', 'h.user_id', 'h.partial', 'p.addresses', 'q.score', 'q.corrupt', 'q.updated_at'])
    .execute();
  const byPeer = new Map<string, Seeder>();
  for (const r of rows) {
    const partial = Number(r.partial) === 1;
    const seen = byPeer.get(r.peer_id);
    if (seen !== undefined) {
      // A sharer or a replica holder that also shows up as a member announcing it: a whole seeder.
      if (!partial) delete seen.partial;
      continue;
    }
    byPeer.set(r.peer_id, {
      peerId: r.peer_id,
      userId: r.user_id,
      addresses: parseAddresses(r.addresses),
      ...currentQuality(storedScore(r), now, policy),
      ...(partial ? { partial: true } : {}),
    });
  }
  const seeders = [...byPeer.values()];
  // Best first; peers flagged for corruption last whatever their score.
  seeders.sort(
    (a, b) => Number(a.flagged) - Number(b.flagged) || b.score - a.score || (a.peerId < b.peerId ? -1 : 1),
  );
  return seeders.slice(0, MAX_SEEDERS_LISTED);
}
