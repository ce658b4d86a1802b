import { createHash } from 'node:crypto';

/**
 * Replica placement for one group (issue 16): which storage peer keeps which
 * file, as a plan of `replicate` (file → peer) and `drop` orders computed
 * from the policy, the storage peers and the replicas known now. Pure: the
 * tracker reads the state from its store, plans, and applies the plan in one
 * transaction.
 *
 * - Rendezvous (highest-random-weight) hashing ranks the peers for each file:
 *   a peer arriving or leaving changes only the files it ranks for.
 * - Never two replicas on one peer; zones are spread while enough are free.
 * - A peer's quota counts what it holds and what it was assigned.
 * - Only verified (held) replicas on storage peers that are live or inside
 *   their grace count; a peer in grace keeps its replicas (no repair traffic).
 * - Repairs go level by level: no file is brought to k + 1 replicas while a
 *   file that can be repaired has k, nor while an assignment at a lower level
 *   is still being fetched (killing two of four at min 3: every file is back
 *   at 2 before any is brought to 3).
 * - Surplus beyond `max` is trimmed from the lowest-ranked holders.
 * - A withdrawing peer receives nothing; its replicas are dropped once the
 *   file has `min` verified replicas without it.
 * - A peer that failed to fetch a file (reported it missing: a full disk, no
 *   holder) is not given that file again while its back-off lasts
 *   (`blocked`; see replicaRetryDelayMs), even when it is the only candidate.
 */

export type StoragePeerState = 'live' | 'grace' | 'gone';
export type ReplicaState = 'assigned' | 'held' | 'corrupt';

export interface ReplicationPolicy {
  /** Replicas every file should have (0: no placement, today's behaviour). */
  min: number;
  /** Replicas beyond this are trimmed (≥ min). */
  max: number;
}

export interface StoragePeerInfo {
  peerId: string;
  /** A label (room, house, rack); '' when none was given. */
  zone: string;
  quotaBytes: number;
  state: StoragePeerState;
  withdrawing: boolean;
}

export interface PlacedFile {
  fileId: string;
  size: number;
}

export interface ReplicaInfo {
  fileId: string;
  peerId: string;
  state: ReplicaState;
}

export interface ReplicateOrder {
  fileId: string;
  peerId: string;
  size: number;
  /** Replicas the file has (verified or on their way) before this one: lower levels go first. */
  level: number;
}

export type DropReason = 'surplus' | 'withdrawn' | 'corrupt' | 'unlisted' | 'unoffered';
export interface DropOrder {
  fileId: string;
  peerId: string;
  reason: DropReason;
}

export interface PlacementPlan {
  /** In the order to hand them out: level, then file id. */
  replicate: ReplicateOrder[];
  drop: DropOrder[];
  /** Assignments held back until the lower levels are done (they come in a later plan). */
  deferred: number;
  /** Files with fewer than `min` verified replicas, fewest first. */
  underReplicated: { fileId: string; verified: number }[];
}

/** A storage peer not to be given a file again yet (its back-off after failing to fetch it). */
export interface BlockedReplica {
  fileId: string;
  peerId: string;
}

/** The first wait after a failed fetch; it doubles with each failure in a row … */
export const REPLICA_RETRY_BASE_MS = 1000;
/** … up to this. */
export const REPLICA_RETRY_MAX_MS = 5 * 60_000;

/** How long a peer waits before it is given a file again after `failures` failed fetches of it in a row. */
export function replicaRetryDelayMs(failures: number): number {
  const doublings = Math.min(Math.max(0, failures - 1), 30);
  return Math.min(REPLICA_RETRY_BASE_MS * 2 ** doublings, REPLICA_RETRY_MAX_MS);
}

/** The rendezvous weight of a peer for a file: the first 64 bits of SHA-256(file id, peer id). */
export function rendezvousWeight(fileId: string, peerId: string): bigint {
  return createHash('sha256').update(fileId).update('\u0000').update(peerId).digest().readBigUInt64BE(0);
}

/** The peers in rendezvous order for a file, best first (ties, which SHA-256 does not make, by peer id). */
export function rankPeers<P extends { peerId: string }>(fileId: string, peers: readonly P[]): P[] {
  const weighted = peers.map((p) => ({ p, w: rendezvousWeight(fileId, p.peerId) }));
  weighted.sort((a, b) => (a.w > b.w ? -1 : a.w < b.w ? 1 : a.p.peerId < b.p.peerId ? -1 : 1));
  return weighted.map((x) => x.p);
}

interface FileState {
  file: PlacedFile;
  ranked: StoragePeerInfo[];
  /** Held on a live or in-grace peer that is not withdrawing. */
  kept: Set<string>;
  /** Held on a live or in-grace withdrawing peer (counts until the file is safe without it). */
  leaving: Set<string>;
  /** Assigned, on a live or in-grace peer that is not withdrawing. */
  pending: Set<string>;
  /** Every peer with any row for this file: none of them gets a new one. */
  taken: Set<string>;
}

const COUNTS = new Set<StoragePeerState>(['live', 'grace']);

export function planPlacement(
  policy: ReplicationPolicy,
  peers: readonly StoragePeerInfo[],
  files: readonly PlacedFile[],
  replicas: readonly ReplicaInfo[],
  blocked: readonly BlockedReplica[] = [],
): PlacementPlan {
  const byPeer = new Map(peers.map((p) => [p.peerId, p]));
  const drop: DropOrder[] = [];
  const used = new Map<string, number>();
  const states = new Map<string, FileState>();
  for (const f of files) {
    states.set(f.fileId, {
      file: f,
      ranked: [],
      kept: new Set(),
      leaving: new Set(),
      pending: new Set(),
      taken: new Set(),
    });
  }

  for (const r of replicas) {
    const peer = byPeer.get(r.peerId);
    const s = states.get(r.fileId);
    if (s === undefined) {
      drop.push({ fileId: r.fileId, peerId: r.peerId, reason: 'unlisted' });
      continue;
    }
    if (peer === undefined) {
      drop.push({ fileId: r.fileId, peerId: r.peerId, reason: 'unoffered' });
      continue;
    }
    s.taken.add(r.peerId);
    if (r.state === 'corrupt') {
      drop.push({ fileId: r.fileId, peerId: r.peerId, reason: 'corrupt' });
      continue;
    }
    // Bytes a peer holds or is fetching count against its quota, whatever its state.
    used.set(r.peerId, (used.get(r.peerId) ?? 0) + s.file.size);
    if (!COUNTS.has(peer.state)) continue;
    if (r.state === 'held') (peer.withdrawing ? s.leaving : s.kept).add(r.peerId);
    else if (peer.withdrawing) drop.push({ fileId: r.fileId, peerId: r.peerId, reason: 'withdrawn' });
    else s.pending.add(r.peerId);
  }

  // A peer in its back-off for a file is as good as taken for it: no new assignment there.
  for (const b of blocked) states.get(b.fileId)?.taken.add(b.peerId);

  const want = policy.min;
  const keepAtMost = Math.max(policy.max, policy.min);
  for (const s of states.values()) {
    s.ranked = rankPeers(s.file.fileId, peers);
    trim(s, keepAtMost, want, drop);
  }

  const candidates = peers.filter((p) => p.state === 'live' && !p.withdrawing);
  const orders = assign([...states.values()], want, candidates, used);
  // Level gate: nothing above the lowest level still in flight (pending) or to hand out now.
  let floor = Number.POSITIVE_INFINITY;
  for (const s of states.values()) {
    if (s.pending.size > 0 && s.kept.size < want) floor = Math.min(floor, s.kept.size);
  }
  for (const o of orders) floor = Math.min(floor, o.level);
  const replicate = orders.filter((o) => o.level <= floor);

  const underReplicated = [...states.values()]
    .map((s) => ({ fileId: s.file.fileId, verified: s.kept.size + s.leaving.size }))
    .filter((u) => u.verified < want)
    .sort((a, b) => a.verified - b.verified || (a.fileId < b.fileId ? -1 : 1));
  return { replicate, drop, deferred: orders.length - replicate.length, underReplicated };
}

/** Drops what a file has too many of: a withdrawing peer's copies once it is safe without them, then surplus. */
function trim(s: FileState, keepAtMost: number, want: number, drop: DropOrder[]): void {
  const fileId = s.file.fileId;
  if (s.kept.size >= want) {
    for (const peerId of s.leaving) drop.push({ fileId, peerId, reason: 'withdrawn' });
    s.leaving.clear();
  }
  // Lowest-ranked first: pending assignments go before verified copies.
  const worstFirst = [...s.ranked].reverse();
  for (const set of [s.pending, s.kept]) {
    for (const p of worstFirst) {
      if (s.kept.size + s.pending.size <= keepAtMost) return;
      if (set.delete(p.peerId)) drop.push({ fileId, peerId: p.peerId, reason: 'surplus' });
    }
  }
}

/**
 * Assigns new replicas to the files below `want`, one at a time to the file
 * with the fewest (verified + pending + assigned here), so the orders come
 * out level by level. Each goes to the best-ranked live peer without a row
 * for the file, with room in its quota, in a zone the file does not use yet
 * when there is one.
 */
function assign(
  states: FileState[],
  want: number,
  candidates: StoragePeerInfo[],
  used: Map<string, number>,
): ReplicateOrder[] {
  const orders: ReplicateOrder[] = [];
  const count = (s: FileState) => s.kept.size + s.pending.size;
  const open = states
    .filter((s) => count(s) < want)
    .sort((a, b) => count(a) - count(b) || (a.file.fileId < b.file.fileId ? -1 : 1));
  const candidateIds = new Set(candidates.map((c) => c.peerId));
  // Levels in rounds: each round gives every open file (at that level or below) one more replica.
  for (let level = 0; level < want && open.length > 0; level++) {
    for (let i = 0; i < open.length; ) {
      const s = open[i]!;
      if (count(s) > level) {
        i++;
        continue;
      }
      const peer = pick(s, candidateIds, used);
      if (peer === undefined) {
        open.splice(i, 1);
        continue;
      }
      orders.push({ fileId: s.file.fileId, peerId: peer.peerId, size: s.file.size, level: count(s) });
      used.set(peer.peerId, (used.get(peer.peerId) ?? 0) + s.file.size);
      s.pending.add(peer.peerId);
      s.taken.add(peer.peerId);
      if (count(s) >= want) open.splice(i, 1);
      else i++;
    }
  }
  return orders;
}

function pick(
  s: FileState,
  candidateIds: Set<string>,
  used: Map<string, number>,
): StoragePeerInfo | undefined {
  const zones = new Set<string>();
  for (const p of s.ranked) {
    if (s.kept.has(p.peerId) || s.pending.has(p.peerId) || s.leaving.has(p.peerId)) zones.add(p.zone);
  }
  const fits = s.ranked.filter(
    (p) =>
      candidateIds.has(p.peerId) &&
      !s.taken.has(p.peerId) &&
      (used.get(p.peerId) ?? 0) + s.file.size <= p.quotaBytes,
  );
  return fits.find((p) => !zones.has(p.zone)) ?? fits[0];
}
