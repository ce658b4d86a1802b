import type { Kysely } from 'kysely';
import type { FileList, VersionList } from '../../protocol/api.js';
import type { Database } from '../store/index.js';
import { type GroupPolicy, policyOf, type StoragePeerRow, storagePeersOf } from './storage-state.js';

/** A verified replica as listings show it: where, whose, and its storage peer's state. */
export interface ReplicaHolder {
  peerId: string;
  userId: string;
  state: 'live' | 'grace';
}

/**
 * A group's verified replicas per file id, for the listings (`list_files`,
 * `list_versions`). Undefined while the group has neither a policy nor
 * storage peers: its listings then say nothing about replicas.
 */
export interface ReplicaView {
  policy: GroupPolicy;
  holders: Map<string, ReplicaHolder[]>;
}

export async function replicaViewOf(
  db: Kysely<Database>,
  groupId: string,
  now: number,
  graceMs: number,
  peers?: StoragePeerRow[],
): Promise<ReplicaView | undefined> {
  const policy = await policyOf(db, groupId);
  const all = peers ?? (await storagePeersOf(db, groupId, now, graceMs));
  if (policy.min === 0 && all.length === 0) return undefined;
  // Only peers that count: a gone peer's copies are the planner's to drop, not anyone's to fetch from.
  const counting = new Map(all.filter((p) => p.state !== 'gone').map((p) => [p.peerId, p]));
  const rows = await db
    .selectFrom('replicas')
    .select(['file_id', 'peer_id'])
    .where('group_id', '=', groupId)
    .where('state', '=', 'held')
    .orderBy('peer_id')
    .execute();
  const holders = new Map<string, ReplicaHolder[]>();
  for (const r of rows) {
    const p = counting.get(r.peer_id);
    if (p === undefined) continue;
    const h: ReplicaHolder = { peerId: p.peerId, userId: p.userId, state: p.state as 'live' | 'grace' };
    holders.set(r.file_id, [...(holders.get(r.file_id) ?? []), h]);
  }
  return { policy, holders };
}

/** The listing with each file's replicas live / in grace / min (unchanged without a view). */
export function withFileReplicas(list: FileList, view: ReplicaView | undefined): FileList {
  if (view === undefined) return list;
  return {
    ...list,
    files: list.files.map((f) => {
      const held = view.holders.get(f.fileId) ?? [];
      const live = held.filter((h) => h.state === 'live').length;
      return { ...f, replicas: { live, grace: held.length - live, min: view.policy.min } };
    }),
  };
}

/** The versions with each one's verified replicas (unchanged without a view). */
export function withVersionReplicas(list: VersionList, view: ReplicaView | undefined): VersionList {
  if (view === undefined) return list;
  return {
    ...list,
    versions: list.versions.map((v) => ({ ...v, replicas: view.holders.get(v.fileId) ?? [] })),
  };
}
