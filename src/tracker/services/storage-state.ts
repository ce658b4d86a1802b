import type { Kysely, Transaction } from 'kysely';
import {
  type BlockedReplica,
  type PlacedFile,
  REPLICA_RETRY_MAX_MS,
  type ReplicaInfo,
  replicaRetryDelayMs,
  type StoragePeerInfo,
  type StoragePeerState,
} from '../../core/index.js';
import { type Database, toNumber } from '../store/index.js';
import { dropUnkeptNames } from './file-names.js';

/** Reads of the storage tables shared by the storage service and the planner, in or out of a transaction. */
type Db = Kysely<Database> | Transaction<Database>;

/**
 * The files a group keeps replicated, with their sizes. The one place that
 * says which: today the group's listed files; with file versions, every
 * retained version.
 */
export async function filesToPlace(db: Db, groupId: string): Promise<PlacedFile[]> {
  const rows = await db
    .selectFrom('group_files as gf')
    .innerJoin('files as f', 'f.file_id', 'gf.file_id')
    .select(['gf.file_id', 'f.size'])
    .where('gf.group_id', '=', groupId)
    .execute();
  return rows.map((r) => ({ fileId: r.file_id, size: toNumber(r.size) }));
}

/** live: connected now; grace: disconnected for at most `graceMs`; gone: longer. */
export function peerState(
  present: boolean,
  lastSeen: number,
  now: number,
  graceMs: number,
): StoragePeerState {
  if (present) return 'live';
  return now - lastSeen <= graceMs ? 'grace' : 'gone';
}

export interface StoragePeerRow extends StoragePeerInfo {
  userId: string;
  offeredAt: number;
  /** Now for a live peer; else when it was last known connected. */
  lastSeen: number;
}

/** Storage offers whose user is still a member of the group, each with its peer's session if connected. */
export function offersWithSessions(db: Db) {
  return db
    .selectFrom('storage_offers as o')
    .innerJoin('memberships as m', (j) =>
      j.onRef('m.group_id', '=', 'o.group_id').onRef('m.user_id', '=', 'o.user_id'),
    )
    .leftJoin('presence as p', (j) =>
      j.onRef('p.peer_id', '=', 'o.peer_id').onRef('p.user_id', '=', 'o.user_id'),
    )
    .select([
      'o.group_id',
      'o.peer_id',
      'o.user_id',
      'o.quota_bytes',
      'o.zone',
      'o.offered_at',
      'o.withdrawing',
      'o.last_seen',
      'p.session_id',
    ]);
}

/** The group's storage peers whose user is still a member, with their state. */
export async function storagePeersOf(
  db: Db,
  groupId: string,
  now: number,
  graceMs: number,
): Promise<StoragePeerRow[]> {
  const rows = await offersWithSessions(db).where('o.group_id', '=', groupId).orderBy('o.peer_id').execute();
  const peers = rows.map((r) => {
    const present = r.session_id !== null && r.session_id !== undefined;
    const lastSeen = toNumber(r.last_seen);
    return {
      peerId: r.peer_id,
      userId: r.user_id,
      zone: r.zone,
      quotaBytes: toNumber(r.quota_bytes),
      state: peerState(present, lastSeen, now, graceMs),
      withdrawing: Number(r.withdrawing) !== 0,
      offeredAt: toNumber(r.offered_at),
      lastSeen: present ? now : lastSeen,
    };
  });
  return goneTogether(peers, graceMs);
}

/**
 * Peers that left together are given up together: a peer in its grace that
 * left at most a quarter of the grace (5 s at most) after a peer now gone is
 * gone too. Two storage peers killed at once leave a few milliseconds apart;
 * without this, a plan made between their two expiries would repair as if
 * only one were lost and bring some files to `min` while others, held by
 * both, still sat below the level being handed out (level-by-level repair
 * needs to see the whole loss at once).
 */
export function goneTogether<P extends { state: StoragePeerState; lastSeen: number }>(
  peers: P[],
  graceMs: number,
): P[] {
  const gone = peers.filter((p) => p.state === 'gone').map((p) => p.lastSeen);
  if (gone.length === 0) return peers;
  const until = Math.max(...gone) + Math.min(graceMs / 4, 5000);
  return peers.map((p) => (p.state === 'grace' && p.lastSeen <= until ? { ...p, state: 'gone' } : p));
}

/**
 * An assignment whose storage peer reported no progress on it for this long
 * (`--storage-fetch-stall-ms`) failed silently (the peer never reported it
 * missing): it is dropped there and placed elsewhere. Progress, not a time
 * sized for the bytes: a folder of thousands of small files takes long for
 * its size, and a big file on a slow link longer still, yet both move.
 */
export const FETCH_STALL_MS = 10 * 60_000;

/**
 * The group's replicas; with `late`, assignments without progress since `late.now - late.stallMs`
 * (assigned then, or last reported moving then) read as corrupt.
 */
export async function replicasOf(
  db: Db,
  groupId: string,
  late?: { now: number; stallMs: number },
): Promise<ReplicaInfo[]> {
  const rows = await db
    .selectFrom('replicas as r')
    .innerJoin('files as f', 'f.file_id', 'r.file_id')
    .select(['r.file_id', 'r.peer_id', 'r.state', 'r.updated_at', 'r.progress_at'])
    .where('r.group_id', '=', groupId)
    .execute();
  return rows.map((r) => {
    const moved = Math.max(toNumber(r.updated_at), r.progress_at === null ? 0 : toNumber(r.progress_at));
    const stalled = late !== undefined && r.state === 'assigned' && late.now - moved > late.stallMs;
    return { fileId: r.file_id, peerId: r.peer_id, state: stalled ? 'corrupt' : r.state };
  });
}

export interface GroupPolicy {
  min: number;
  max: number;
}

/** The group's policy; min 0 (no placement) without a row. */
export async function policyOf(db: Db, groupId: string): Promise<GroupPolicy> {
  const row = await db
    .selectFrom('replication_policies')
    .select(['min_replicas', 'max_replicas'])
    .where('group_id', '=', groupId)
    .executeTakeFirst();
  return row === undefined ? { min: 0, max: 0 } : { min: row.min_replicas, max: row.max_replicas };
}

/** Counts of verified replicas per file, on storage peers that count (live or in grace). */
export function verifiedCounts(
  files: PlacedFile[],
  peers: StoragePeerInfo[],
  replicas: ReplicaInfo[],
): Map<string, number> {
  const counting = new Set(peers.filter((p) => p.state !== 'gone').map((p) => p.peerId));
  const counts = new Map(files.map((f) => [f.fileId, 0]));
  for (const r of replicas) {
    const n = counts.get(r.fileId);
    if (n !== undefined && r.state === 'held' && counting.has(r.peerId)) counts.set(r.fileId, n + 1);
  }
  return counts;
}

/**
 * Takes out of the group's listing the names of these files (or every name)
 * when none of a name's versions is shared any more nor held verified by a
 * storage peer (file-names.ts dropUnkeptNames). Returns the files that left the listing.
 */
export async function delistUnheld(trx: Db, groupId: string, fileIds?: string[]): Promise<string[]> {
  if (fileIds === undefined) return dropUnkeptNames(trx, groupId);
  if (fileIds.length === 0) return [];
  const names = await trx
    .selectFrom('group_files')
    .select('name')
    .distinct()
    .where('group_id', '=', groupId)
    .where('file_id', 'in', fileIds)
    .execute();
  return dropUnkeptNames(
    trx,
    groupId,
    names.map((r) => r.name),
  );
}

/**
 * A storage peer reported a file it was given missing (it could not fetch
 * it): it is not given that file again before a wait that doubles with each
 * failure in a row (replicaRetryDelayMs). Returns when it may be.
 */
export async function recordFetchFailure(
  trx: Db,
  groupId: string,
  fileId: string,
  peerId: string,
  now: number,
): Promise<number> {
  const row = await trx
    .selectFrom('replica_backoffs')
    .select(['failures', 'retry_at'])
    .where('group_id', '=', groupId)
    .where('file_id', '=', fileId)
    .where('peer_id', '=', peerId)
    .executeTakeFirst();
  // A failure long after the last back-off ended starts the count again.
  const stale = row !== undefined && now - toNumber(row.retry_at) > REPLICA_RETRY_MAX_MS;
  const failures = row === undefined || stale ? 1 : row.failures + 1;
  const retryAt = now + replicaRetryDelayMs(failures);
  await trx
    .insertInto('replica_backoffs')
    .values({ group_id: groupId, file_id: fileId, peer_id: peerId, failures, retry_at: retryAt })
    .onConflict((oc) =>
      oc.columns(['group_id', 'file_id', 'peer_id']).doUpdateSet({ failures, retry_at: retryAt }),
    )
    .execute();
  return retryAt;
}

/** The peer holds these files now: their back-offs there are over. */
export async function clearFetchFailures(
  trx: Db,
  groupId: string,
  peerId: string,
  fileIds: string[],
): Promise<void> {
  if (fileIds.length === 0) return;
  await trx
    .deleteFrom('replica_backoffs')
    .where('group_id', '=', groupId)
    .where('peer_id', '=', peerId)
    .where('file_id', 'in', fileIds)
    .execute();
}

/**
 * The group's peers still in their back-off for a file at `now` (the planner
 * gives them nothing of it), and the earliest end among them (when to plan
 * the group again). Rows long over are forgotten.
 */
export async function backoffsOf(
  trx: Db,
  groupId: string,
  now: number,
): Promise<{ blocked: BlockedReplica[]; nextRetryAt: number | undefined }> {
  await trx
    .deleteFrom('replica_backoffs')
    .where('group_id', '=', groupId)
    .where('retry_at', '<', now - REPLICA_RETRY_MAX_MS)
    .execute();
  const rows = await trx
    .selectFrom('replica_backoffs')
    .select(['file_id', 'peer_id', 'retry_at'])
    .where('group_id', '=', groupId)
    .where('retry_at', '>', now)
    .execute();
  let nextRetryAt: number | undefined;
  for (const r of rows) nextRetryAt = Math.min(nextRetryAt ?? Number.POSITIVE_INFINITY, toNumber(r.retry_at));
  return { blocked: rows.map((r) => ({ fileId: r.file_id, peerId: r.peer_id })), nextRetryAt };
}
