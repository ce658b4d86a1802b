import type { Transaction } from 'kysely';
import { MAX_TICKET_TTL_SECONDS } from '../../protocol/tickets.js';
import type { Database } from '../store/index.js';
import { toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';

/**
 * Ticket revocations: a member removed from a group, or who left it, must
 * lose access at once, though tickets are checked offline by seeders.
 *
 * The design: the tracker records "tickets of U in G issued before second T
 * are void" (T just past the removal, so that every ticket issued up to that
 * moment, iat being whole seconds, is covered), and tells the group's seeders:
 * a `tickets_revoked` event on the bus (every tracker of a cluster hears it)
 * pushed to the sessions of the group's members, whose piece servers drop
 * U's connections for G and refuse U's older tickets. A seeder whose session
 * was down at that moment gets the revocations of the last hour when its
 * session says hello again: no ticket lives longer (MAX_TICKET_TTL_SECONDS),
 * so older rows void nothing still valid. A user accepted again later gets
 * tickets stamped no earlier than T (the tickets service reads the row), which
 * work even within the second of the removal.
 */
export interface TicketRevocation {
  groupId: string;
  userId: string;
  /** Seconds since the epoch: tickets with `iat` before it are void. */
  before: number;
}

export interface RevocationsService {
  /** Records the revocation inside the removal's transaction; publish it after the commit. */
  record(trx: Transaction<Database>, groupId: string, userId: string): Promise<TicketRevocation>;
  publish(r: TicketRevocation): Promise<void>;
  /** Who should hear of a revocation in the group: its members (the seeders of its files). */
  recipients(groupId: string): Promise<string[]>;
  /** Revocations still able to void a live ticket, in the groups `userId` belongs to. */
  recentFor(userId: string): Promise<TicketRevocation[]>;
}

export function createRevocationsService() {
  return (deps: ServiceDeps): RevocationsService => {
    const { store, bus, now } = deps;
    return {
      async record(trx, groupId, userId) {
        const before = Math.floor(now() / 1000) + 1;
        await trx
          .insertInto('ticket_revocations')
          .values({ group_id: groupId, user_id: userId, before_s: before })
          .onConflict((oc) => oc.columns(['group_id', 'user_id']).doUpdateSet({ before_s: before }))
          .execute();
        return { groupId, userId, before };
      },

      publish: (r) => bus.publish({ kind: 'tickets_revoked', ...r, at: now() }),

      async recipients(groupId) {
        const rows = await store.db
          .selectFrom('memberships')
          .select('user_id')
          .where('group_id', '=', groupId)
          .execute();
        return rows.map((r) => r.user_id);
      },

      async recentFor(userId) {
        const horizon = Math.floor(now() / 1000) - MAX_TICKET_TTL_SECONDS;
        const rows = await store.db
          .selectFrom('ticket_revocations as r')
          .innerJoin('memberships as m', 'm.group_id', 'r.group_id')
          .select(['r.group_id', 'r.user_id', 'r.before_s'])
          .where('m.user_id', '=', userId)
          .where('r.before_s', '>', horizon)
          .orderBy('r.before_s')
          .limit(1000)
          .execute();
        return rows.map((r) => ({ groupId: r.group_id, userId: r.user_id, before: toNumber(r.before_s) }));
      },
    };
  };
}
