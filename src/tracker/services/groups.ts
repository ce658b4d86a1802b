import type { Transaction } from 'kysely';
import type {
  GroupList,
  GroupSummary,
  JoinDecision,
  JoinRequestList,
  JoinResponse,
  LeaveResponse,
  MemberList,
  RemoveMemberResponse,
} from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { assertNewName } from '../../protocol/names.js';
import type { Database } from '../store/index.js';
import { toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import { dropUnkeptNames } from './file-names.js';
import { createReadCache } from './read-cache.js';
import type { RevocationsService, TicketRevocation } from './revocations.js';
import { userExists } from './users.js';

export interface GroupsService {
  create(userId: string, groupId: string): Promise<GroupSummary>;
  list(userId: string): Promise<GroupList>;
  join(userId: string, groupId: string): Promise<JoinResponse>;
  listRequests(userId: string, groupId: string): Promise<JoinRequestList>;
  decide(userId: string, groupId: string, requester: string, accept: boolean): Promise<JoinDecision>;
  members(userId: string, groupId: string): Promise<MemberList>;
  leave(userId: string, groupId: string): Promise<LeaveResponse>;
  /** The owner removes a member: their shares there stop being listed and their tickets are revoked. */
  removeMember(userId: string, groupId: string, member: string): Promise<RemoveMemberResponse>;
  /** Throws GROUP_NOT_FOUND or NOT_A_MEMBER (naming the owner to ask); returns the owner. */
  requireMember(userId: string, groupId: string): Promise<{ owner: string }>;
  /** Throws GROUP_NOT_FOUND or NOT_OWNER (naming the owner). */
  requireOwner(userId: string, groupId: string): Promise<void>;
}

export const groupNotFound = (groupId: string) =>
  new CoterieError(
    'GROUP_NOT_FOUND',
    `no group '${groupId}': check the name with the group list, or create it`,
  );

export function createGroupsService(options: { readCacheMs: number; readCacheEntries: number }) {
  return (deps: ServiceDeps & { revocations: RevocationsService }): GroupsService => {
    const { store, bus, now, revocations } = deps;
    const db = store.db;
    // (user, group) → standing, for the membership check every group route makes.
    const standings = createReadCache<{ owner: string; member: boolean }>({
      ttlMs: options.readCacheMs,
      maxEntries: options.readCacheEntries,
      now,
    });
    bus.subscribe((e) => {
      if (e.kind === 'membership_changed') standings.invalidateTag(e.groupId);
      else if (e.kind === 'events_lost') standings.clear();
    });
    const changed = (groupId: string) => bus.publish({ kind: 'membership_changed', groupId, at: now() });

    async function standingOf(userId: string, groupId: string, q: Transaction<Database> | typeof db = db) {
      const row = await q
        .selectFrom('groups as g')
        .leftJoin('memberships as m', (j) =>
          j.onRef('m.group_id', '=', 'g.group_id').on('m.user_id', '=', userId),
        )
        .select(['g.owner_id', 'm.user_id as member'])
        .where('g.group_id', '=', groupId)
        .executeTakeFirst();
      if (row === undefined) throw groupNotFound(groupId);
      return { owner: row.owner_id, member: row.member !== null && row.member !== undefined };
    }

    async function requireMember(userId: string, groupId: string) {
      const s = await standings.through(`${groupId}\u0000${userId}`, groupId, () =>
        standingOf(userId, groupId),
      );
      if (!s.member) {
        throw new CoterieError(
          'NOT_A_MEMBER',
          `not a member of group '${groupId}': ask its owner '${s.owner}' to accept your join request`,
        );
      }
      return { owner: s.owner };
    }

    /**
     * Takes `userId` out of the group: their peers stop sharing there, files
     * nobody shares any more (and no storage peer keeps) leave the listing, and their tickets for the group
     * are revoked (recorded here, published by the caller after the commit).
     */
    async function dropMember(trx: Transaction<Database>, groupId: string, userId: string) {
      await trx
        .deleteFrom('memberships')
        .where('group_id', '=', groupId)
        .where('user_id', '=', userId)
        .execute();
      await trx.deleteFrom('shares').where('group_id', '=', groupId).where('user_id', '=', userId).execute();
      await dropUnkeptNames(trx, groupId);
      return revocations.record(trx, groupId, userId);
    }

    async function requireOwner(userId: string, groupId: string) {
      const s = await standingOf(userId, groupId);
      if (s.owner !== userId) {
        throw new CoterieError(
          'NOT_OWNER',
          `only the owner of group '${groupId}' ('${s.owner}') may do this`,
        );
      }
    }

    return {
      requireMember,
      requireOwner,

      async create(userId, groupId) {
        assertNewName('group id', groupId);
        const createdAt = now();
        return store.transaction(async (trx) => {
          const r = await trx
            .insertInto('groups')
            .values({ group_id: groupId, owner_id: userId, created_at: createdAt })
            .onConflict((oc) => oc.column('group_id').doNothing())
            .executeTakeFirst();
          if (Number(r.numInsertedOrUpdatedRows ?? 0) === 0) {
            throw new CoterieError(
              'GROUP_EXISTS',
              `group '${groupId}' already exists: pick another name, or ask to join it`,
            );
          }
          await trx
            .insertInto('memberships')
            .values({ group_id: groupId, user_id: userId, joined_at: createdAt })
            .execute();
          return { groupId, owner: userId, memberCount: 1, standing: 'member', createdAt };
        });
      },

      async list(userId) {
        const groups = await db
          .selectFrom('groups as g')
          .leftJoin('memberships as m', 'm.group_id', 'g.group_id')
          .select((eb) => [
            'g.group_id',
            'g.owner_id',
            'g.created_at',
            eb.fn.count<number | string>('m.user_id').as('n'),
          ])
          .groupBy(['g.group_id', 'g.owner_id', 'g.created_at'])
          .orderBy('g.group_id')
          .execute();
        const mine = new Set(
          (await db.selectFrom('memberships').select('group_id').where('user_id', '=', userId).execute()).map(
            (r) => r.group_id,
          ),
        );
        const pending = new Set(
          (
            await db.selectFrom('join_requests').select('group_id').where('user_id', '=', userId).execute()
          ).map((r) => r.group_id),
        );
        return {
          groups: groups.map((g) => ({
            groupId: g.group_id,
            owner: g.owner_id,
            memberCount: toNumber(g.n),
            standing: mine.has(g.group_id) ? 'member' : pending.has(g.group_id) ? 'pending' : 'none',
            createdAt: toNumber(g.created_at),
          })),
        };
      },

      async join(userId, groupId) {
        const s = await standingOf(userId, groupId);
        if (s.member) {
          throw new CoterieError('ALREADY_MEMBER', `you are already a member of group '${groupId}'`);
        }
        const at = now();
        const r = await db
          .insertInto('join_requests')
          .values({ group_id: groupId, user_id: userId, requested_at: at })
          .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
          .executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) {
          await bus.publish({ kind: 'join_requested', groupId, userId, owner: s.owner, at });
        }
        return { groupId, standing: 'pending', owner: s.owner };
      },

      async listRequests(userId, groupId) {
        await requireOwner(userId, groupId);
        const rows = await db
          .selectFrom('join_requests')
          .select(['user_id', 'requested_at'])
          .where('group_id', '=', groupId)
          .orderBy('requested_at')
          .orderBy('user_id')
          .execute();
        return {
          groupId,
          requests: rows.map((r) => ({ userId: r.user_id, requestedAt: toNumber(r.requested_at) })),
        };
      },

      async decide(userId, groupId, requester, accept) {
        await requireOwner(userId, groupId);
        const at = now();
        // The answer is the transaction's result, so the idempotency marker holds it (http/app.ts).
        const decision = await store.transaction(async (trx): Promise<JoinDecision> => {
          const d = await trx
            .deleteFrom('join_requests')
            .where('group_id', '=', groupId)
            .where('user_id', '=', requester)
            .executeTakeFirst();
          if (Number(d.numDeletedRows) === 0) {
            throw new CoterieError(
              'REQUEST_NOT_FOUND',
              `no pending join request from '${requester}' in group '${groupId}': list the requests to see who asked`,
            );
          }
          if (accept) {
            await trx
              .insertInto('memberships')
              .values({ group_id: groupId, user_id: requester, joined_at: at })
              .onConflict((oc) => oc.columns(['group_id', 'user_id']).doNothing())
              .execute();
          }
          return { groupId, userId: requester, decision: accept ? 'accepted' : 'declined' };
        });
        if (accept) await changed(groupId);
        await bus.publish({ kind: 'join_decided', groupId, userId: requester, accepted: accept, at });
        return decision;
      },

      async members(userId, groupId) {
        const { owner } = await requireMember(userId, groupId);
        const rows = await db
          .selectFrom('memberships')
          .select(['user_id', 'joined_at'])
          .where('group_id', '=', groupId)
          .orderBy('joined_at')
          .orderBy('user_id')
          .execute();
        return {
          groupId,
          members: rows.map((r) => ({
            userId: r.user_id,
            role: r.user_id === owner ? 'owner' : 'member',
            joinedAt: toNumber(r.joined_at),
          })),
        };
      },

      async leave(userId, groupId) {
        await requireMember(userId, groupId);
        let revoked: TicketRevocation | undefined;
        const result = await store.transaction(async (trx): Promise<LeaveResponse> => {
          const s = await standingOf(userId, groupId, trx);
          revoked = await dropMember(trx, groupId, userId);
          const next = await trx
            .selectFrom('memberships')
            .select('user_id')
            .where('group_id', '=', groupId)
            .orderBy('joined_at')
            .orderBy('user_id')
            .limit(1)
            .executeTakeFirst();
          if (next === undefined) {
            await trx.deleteFrom('join_requests').where('group_id', '=', groupId).execute();
            await trx.deleteFrom('group_files').where('group_id', '=', groupId).execute();
            await trx.deleteFrom('groups').where('group_id', '=', groupId).execute();
            return { groupId, owner: null, deleted: true };
          }
          let owner = s.owner;
          if (s.owner === userId) {
            owner = next.user_id;
            await trx
              .updateTable('groups')
              .set({ owner_id: owner })
              .where('group_id', '=', groupId)
              .execute();
          }
          return { groupId, owner, deleted: false };
        });
        await changed(groupId);
        if (revoked !== undefined && !result.deleted) await revocations.publish(revoked);
        return result;
      },

      async removeMember(userId, groupId, member) {
        await requireOwner(userId, groupId);
        if (member === userId) {
          throw new CoterieError(
            'BAD_REQUEST',
            `you own group '${groupId}' and cannot remove yourself: leave_group ${groupId} passes ownership to the longest-standing member`,
          );
        }
        let revoked: TicketRevocation | undefined;
        // The transaction returns the answer: a retry whose first attempt committed gets it back.
        const answer = await store.transaction(async (trx): Promise<RemoveMemberResponse> => {
          if (!(await userExists(trx, member))) {
            throw new CoterieError('USER_NOT_FOUND', `no user '${member}': check the name with list_members`);
          }
          const s = await standingOf(member, groupId, trx);
          if (!s.member) {
            throw new CoterieError(
              'NOT_A_MEMBER',
              `'${member}' is not a member of group '${groupId}': list_members shows who is`,
            );
          }
          revoked = await dropMember(trx, groupId, member);
          return { groupId, userId: member, removed: true };
        });
        await changed(groupId);
        if (revoked !== undefined) await revocations.publish(revoked);
        return answer;
      },
    };
  };
}
