import type {
  FileList,
  OfferStorageRequest,
  ReplicationHealth,
  ReplicationPolicy,
  SetReplicationRequest,
  StorageList,
  StorageOffer,
  VersionList,
  WithdrawResponse,
  WithdrawStorageRequest,
} from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import type { DropOrder, ReplicasMessage, ReplicateOrder } from '../../protocol/session.js';
import { toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import type { GroupsService } from './groups.js';
import type { PeerSessionInfo } from './presence.js';
import {
  clearFetchFailures,
  filesToPlace,
  policyOf,
  recordFetchFailure,
  replicasOf,
  type StoragePeerRow,
  storagePeersOf,
  verifiedCounts,
} from './storage-state.js';
import { replicaViewOf, withFileReplicas, withVersionReplicas } from './storage-view.js';

/**
 * Storage peers (issue 16), the member's and owner's side: offers of space,
 * withdrawals, the group's replication policy, the listing, and what storage
 * peers report over their sessions. Placement itself is the planner's
 * (storage-planner.ts); every change here tells it on the bus.
 */
export interface StorageService {
  offer(userId: string, groupId: string, request: OfferStorageRequest): Promise<StorageOffer>;
  withdraw(userId: string, groupId: string, request: WithdrawStorageRequest): Promise<WithdrawResponse>;
  setReplication(userId: string, groupId: string, request: SetReplicationRequest): Promise<ReplicationPolicy>;
  list(userId: string, groupId: string): Promise<StorageList>;
  /** A file listing (already checked for membership) with each file's verified replicas live / in grace / min. */
  withReplicas(list: FileList): Promise<FileList>;
  /** A name's versions (already checked) with each version's verified replicas. */
  withVersionReplicas(list: VersionList): Promise<VersionList>;
  /**
   * A storage peer's report (the `replicas` session message). Returns what to
   * tell that session at once: drops for groups it no longer stores for, and,
   * after a complete report, the assignments that stand.
   */
  report(info: PeerSessionInfo, groups: ReplicasMessage['groups']): Promise<(ReplicateOrder | DropOrder)[]>;
  /** The peer's standing assignments, to send again after its hello. */
  standing(peerId: string): Promise<ReplicateOrder[]>;
  /** The peer's session ended: its grace starts now. */
  peerLeft(peerId: string): Promise<void>;
}

export interface StorageOptions {
  /** A storage peer disconnected longer than this stops counting (`--storage-grace-ms`). */
  storageGraceMs: number;
  /** A replica fetched to order: its bytes and the seconds from assignment to verified. */
  onReplicated?: (bytes: number, seconds: number) => void;
}

export function createStorageService(options: StorageOptions) {
  return (deps: ServiceDeps & { groups: GroupsService }): StorageService => {
    const { store, bus, now, groups } = deps;
    const db = store.db;
    const changed = (groupId: string) => bus.publish({ kind: 'storage_changed', groupId, at: now() });

    async function health(groupId: string, peers?: StoragePeerRow[]): Promise<ReplicationHealth> {
      const t = now();
      const policy = await policyOf(db, groupId);
      const all = peers ?? (await storagePeersOf(db, groupId, t, options.storageGraceMs));
      const files = await filesToPlace(db, groupId);
      const replicas = await replicasOf(db, groupId);
      const counts = verifiedCounts(files, all, replicas);
      const under = [...counts.values()].filter((n) => n < policy.min).length;
      const usable = all.filter((p) => p.state !== 'gone' && !p.withdrawing).length;
      // Copies on their way, split by what they do: bring a file up to min, or toward max.
      const counting = new Set(all.filter((p) => p.state !== 'gone').map((p) => p.peerId));
      const coming = new Set(
        replicas.filter((r) => r.state === 'assigned' && counting.has(r.peerId)).map((r) => r.fileId),
      );
      const repairing = [...coming].filter((f) => (counts.get(f) ?? 0) < policy.min).length;
      const out: ReplicationHealth = {
        ...policy,
        storagePeers: all.length,
        underReplicatedFiles: under,
        repairing,
        moving: coming.size - repairing,
      };
      if (policy.min > usable) {
        out.warning = `under-replicated: ${usable} of ${policy.min} (${usable} storage peers)`;
      } else if (under > 0) {
        out.warning = `under-replicated: ${under} file(s) below ${policy.min} replicas`;
      }
      return out;
    }

    async function requireOwnPeer(userId: string, peerId: string) {
      const p = await db
        .selectFrom('presence')
        .select('user_id')
        .where('peer_id', '=', peerId)
        .executeTakeFirst();
      if (p !== undefined && p.user_id !== userId) {
        throw new CoterieError(
          'PEER_MISMATCH',
          `peer ${peerId.slice(0, 12)}… is connected as another user: offer space from your own peer`,
        );
      }
    }

    const offerOf = (groupId: string, peerId: string) =>
      db
        .selectFrom('storage_offers')
        .select(['user_id', 'offered_at'])
        .where('group_id', '=', groupId)
        .where('peer_id', '=', peerId)
        .executeTakeFirst();

    return {
      async offer(userId, groupId, request) {
        await groups.requireMember(userId, groupId);
        await requireOwnPeer(userId, request.peerId);
        const t = now();
        const zone = request.zone ?? '';
        const taken = await offerOf(groupId, request.peerId);
        if (taken !== undefined && taken.user_id !== userId) {
          throw new CoterieError('PEER_MISMATCH', `peer ${request.peerId.slice(0, 12)}… is another user's`);
        }
        await db
          .insertInto('storage_offers')
          .values({
            group_id: groupId,
            peer_id: request.peerId,
            user_id: userId,
            quota_bytes: request.quotaBytes,
            zone,
            offered_at: t,
            withdrawing: 0,
            last_seen: t,
          })
          .onConflict((oc) =>
            oc
              .columns(['group_id', 'peer_id'])
              .doUpdateSet({ quota_bytes: request.quotaBytes, zone, withdrawing: 0, last_seen: t }),
          )
          .execute();
        const row = (await offerOf(groupId, request.peerId))!;
        await changed(groupId);
        return {
          groupId,
          peerId: request.peerId,
          userId,
          quotaBytes: request.quotaBytes,
          zone,
          offeredAt: toNumber(row.offered_at),
        };
      },

      async withdraw(userId, groupId, request) {
        await groups.requireMember(userId, groupId);
        let q = db
          .selectFrom('storage_offers')
          .select('peer_id')
          .where('group_id', '=', groupId)
          .where('user_id', '=', userId);
        if (request.peerId !== undefined) q = q.where('peer_id', '=', request.peerId);
        const peerIds = (await q.execute()).map((r) => r.peer_id);
        if (peerIds.length === 0) {
          throw new CoterieError(
            'NOT_FOUND',
            `you offer no storage to group '${groupId}'${request.peerId ? ' from that peer' : ''}`,
          );
        }
        const ended = request.now === true;
        if (ended) {
          // The planner drops the replicas of peers that no longer offer ('unoffered') and repairs.
          await db
            .deleteFrom('storage_offers')
            .where('group_id', '=', groupId)
            .where('peer_id', 'in', peerIds)
            .execute();
        } else {
          await db
            .updateTable('storage_offers')
            .set({ withdrawing: 1 })
            .where('group_id', '=', groupId)
            .where('peer_id', 'in', peerIds)
            .execute();
        }
        await changed(groupId);
        return { groupId, peerIds, ended };
      },

      async setReplication(userId, groupId, request) {
        await groups.requireOwner(userId, groupId);
        const max = request.max ?? request.min;
        if (request.min > max) {
          throw new CoterieError(
            'BAD_REQUEST',
            `min ${request.min} is above max ${max}: give a max at least as large as min`,
          );
        }
        const t = now();
        await db
          .insertInto('replication_policies')
          .values({ group_id: groupId, min_replicas: request.min, max_replicas: max, updated_at: t })
          .onConflict((oc) =>
            oc
              .column('group_id')
              .doUpdateSet({ min_replicas: request.min, max_replicas: max, updated_at: t }),
          )
          .execute();
        await changed(groupId);
        return { groupId, ...(await health(groupId)) };
      },

      async list(userId, groupId) {
        await groups.requireMember(userId, groupId);
        const peers = await storagePeersOf(db, groupId, now(), options.storageGraceMs);
        const usage = await db
          .selectFrom('replicas as r')
          .innerJoin('files as f', 'f.file_id', 'r.file_id')
          .select(['r.peer_id', 'r.state', (eb) => eb.fn.sum<number | string>('f.size').as('bytes')])
          .select((eb) => eb.fn.count<number | string>('r.file_id').as('n'))
          .where('r.group_id', '=', groupId)
          .groupBy(['r.peer_id', 'r.state'])
          .execute();
        const of = (peerId: string, state: string) =>
          usage.find((u) => u.peer_id === peerId && u.state === state);
        return {
          groupId,
          replication: await health(groupId, peers),
          peers: peers.map((p) => ({
            peerId: p.peerId,
            userId: p.userId,
            zone: p.zone,
            quotaBytes: p.quotaBytes,
            usedBytes: ['held', 'assigned'].reduce((n, s) => n + toNumber(of(p.peerId, s)?.bytes ?? 0), 0),
            replicasHeld: toNumber(of(p.peerId, 'held')?.n ?? 0),
            replicasAssigned: toNumber(of(p.peerId, 'assigned')?.n ?? 0),
            state: p.state,
            withdrawing: p.withdrawing,
            lastHeartbeatAt: p.lastSeen,
            offeredAt: p.offeredAt,
          })),
        };
      },

      async withReplicas(list) {
        return withFileReplicas(list, await replicaViewOf(db, list.groupId, now(), options.storageGraceMs));
      },

      async withVersionReplicas(list) {
        return withVersionReplicas(
          list,
          await replicaViewOf(db, list.groupId, now(), options.storageGraceMs),
        );
      },

      report: (info, reports) => applyReport(deps, options, info, reports),

      async standing(peerId) {
        const rows = await db
          .selectFrom('replicas as r')
          .innerJoin('files as f', 'f.file_id', 'r.file_id')
          .select(['r.group_id', 'r.file_id', 'f.size'])
          .where('r.peer_id', '=', peerId)
          .where('r.state', '=', 'assigned')
          .orderBy('r.updated_at')
          .execute();
        const at = now();
        return rows.map((r) => ({
          type: 'replicate' as const,
          groupId: r.group_id,
          fileId: r.file_id,
          size: toNumber(r.size),
          at,
        }));
      },

      async peerLeft(peerId) {
        const offers = await db
          .updateTable('storage_offers')
          .set({ last_seen: now() })
          .where('peer_id', '=', peerId)
          .returning('group_id')
          .execute();
        for (const o of offers) await changed(o.group_id);
      },
    };
  };
}

/** What a storage peer says it holds, written down; see StorageService.report. */
async function applyReport(
  deps: ServiceDeps,
  options: StorageOptions,
  info: PeerSessionInfo,
  reports: ReplicasMessage['groups'],
): Promise<(ReplicateOrder | DropOrder)[]> {
  const { store, bus, now } = deps;
  const out: (ReplicateOrder | DropOrder)[] = [];
  const t = now();
  for (const g of reports) {
    const offer = await store.db
      .selectFrom('storage_offers')
      .select('user_id')
      .where('group_id', '=', g.groupId)
      .where('peer_id', '=', info.peerId)
      .where('user_id', '=', info.userId)
      .executeTakeFirst();
    if (offer === undefined) {
      // Copies kept for a group it no longer stores for: free them.
      for (const fileId of [...g.held, ...(g.corrupt ?? [])]) {
        out.push({ type: 'drop', groupId: g.groupId, fileId, reason: 'unoffered', at: t });
      }
      continue;
    }
    const fetched = await store.transaction(async (trx) => {
      const before = await trx
        .selectFrom('replicas as r')
        .innerJoin('files as f', 'f.file_id', 'r.file_id')
        .select(['r.file_id', 'r.state', 'r.updated_at', 'f.size'])
        .where('r.group_id', '=', g.groupId)
        .where('r.peer_id', '=', info.peerId)
        .execute();
      const known = new Map(before.map((r) => [r.file_id, r]));
      const upsert = async (fileId: string, state: 'held' | 'corrupt') => {
        await trx
          .insertInto('replicas')
          .values({ group_id: g.groupId, file_id: fileId, peer_id: info.peerId, state, updated_at: t })
          .onConflict((oc) =>
            oc.columns(['group_id', 'file_id', 'peer_id']).doUpdateSet({ state, updated_at: t }),
          )
          .execute();
      };
      // Only files the tracker knows (a row in `files`): anything else is not a replica of this group's.
      const listed = new Set(
        [...g.held, ...(g.corrupt ?? [])].length === 0
          ? []
          : (
              await trx
                .selectFrom('files')
                .select('file_id')
                .where('file_id', 'in', [...g.held, ...(g.corrupt ?? [])])
                .execute()
            ).map((r) => r.file_id),
      );
      const fetched: { fileId: string; bytes: number; seconds: number }[] = [];
      const nowHeld: string[] = [];
      // A copy of a file the tracker no longer knows: removed by the GC (file-gc.ts) after it left
      // every listing, its drop lost while this peer was away. Freed now; nothing else would ask.
      for (const fileId of [...g.held, ...(g.corrupt ?? [])]) {
        if (!listed.has(fileId))
          out.push({ type: 'drop', groupId: g.groupId, fileId, reason: 'unlisted', at: t });
      }
      for (const fileId of g.held) {
        if (!listed.has(fileId)) continue;
        const was = known.get(fileId);
        if (was?.state === 'held') continue;
        await upsert(fileId, 'held');
        nowHeld.push(fileId);
        if (was?.state === 'assigned') {
          fetched.push({ fileId, bytes: toNumber(was.size), seconds: (t - toNumber(was.updated_at)) / 1000 });
        }
      }
      for (const fileId of g.corrupt ?? []) if (listed.has(fileId)) await upsert(fileId, 'corrupt');
      // Fetches under way that moved: their assignments stand for another stall period.
      if (g.fetching !== undefined && g.fetching.length > 0) {
        await trx
          .updateTable('replicas')
          .set({ progress_at: t })
          .where('group_id', '=', g.groupId)
          .where('peer_id', '=', info.peerId)
          .where('state', '=', 'assigned')
          .where('file_id', 'in', g.fetching)
          .execute();
      }
      await clearFetchFailures(trx, g.groupId, info.peerId, nowHeld);
      // A copy it cannot produce is as good as a corrupt one: dropped there, placed elsewhere,
      // and not given to this peer again before its back-off ends (a disk always full, say).
      const missing = g.missing ?? [];
      for (const fileId of missing) {
        if (!known.has(fileId)) continue;
        await upsert(fileId, 'corrupt');
        await recordFetchFailure(trx, g.groupId, fileId, info.peerId, t);
      }
      if (g.complete === true) {
        const kept = new Set([...g.held, ...(g.corrupt ?? [])]);
        const lost = before
          .filter((r) => r.state !== 'assigned' && !kept.has(r.file_id))
          .map((r) => r.file_id);
        if (lost.length > 0) {
          await trx
            .deleteFrom('replicas')
            .where('group_id', '=', g.groupId)
            .where('peer_id', '=', info.peerId)
            .where('file_id', 'in', lost)
            .execute();
        }
        for (const r of before) {
          if (r.state === 'assigned' && !kept.has(r.file_id) && !missing.includes(r.file_id)) {
            out.push({
              type: 'replicate',
              groupId: g.groupId,
              fileId: r.file_id,
              size: toNumber(r.size),
              at: t,
            });
          }
        }
      }
      await trx
        .updateTable('storage_offers')
        .set({ last_seen: t })
        .where('group_id', '=', g.groupId)
        .where('peer_id', '=', info.peerId)
        .execute();
      return fetched;
    });
    for (const f of fetched) {
      options.onReplicated?.(f.bytes, f.seconds);
      // The peer serves it now: cached seeder lists of the file are stale.
      await bus.publish({ kind: 'files_changed', groupId: g.groupId, fileId: f.fileId, at: t });
    }
    // A report of progress alone changes no placement: the planner is not woken for it.
    const progressOnly =
      g.held.length === 0 && !g.corrupt?.length && !g.missing?.length && g.complete !== true;
    if (!progressOnly || g.fetching === undefined) {
      await bus.publish({ kind: 'storage_changed', groupId: g.groupId, at: t });
    }
  }
  return out;
}
