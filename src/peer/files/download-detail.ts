import { DEFAULT_SCHEDULER_OPTIONS } from '../../core/index.js';
import type { AssignmentAnalysis, DownloadDetail } from '../../protocol/control.js';
import type { TransferProgress } from '../../protocol/peer-events.js';
import type { PeerStore } from '../store/index.js';
import type { PieceDistribution } from './download/index.js';

type MetaStore = Pick<PeerStore, 'getMeta' | 'setMeta'>;

/** The weights of the selection rule α·score − β·load/threshold a daemon runs with (`--alpha`, `--beta`). */
export interface RuleWeights {
  alpha?: number;
  beta?: number;
}

/** Sorted piece numbers as ranges of consecutive ones: [3, 4, 5, 9] → [[3, 5], [9, 9]]. */
export function rangesOf(pieces: readonly number[]): [number, number][] {
  const out: [number, number][] = [];
  for (const p of pieces) {
    const last = out.at(-1);
    if (last !== undefined && last[1] === p - 1) last[1] = p;
    else out.push([p, p]);
  }
  return out;
}

/** A running download looked into: its peers as the transfer view has them, and what nobody online has. */
export function runningDetail(
  t: TransferProgress,
  unreachable: readonly number[] | undefined,
): DownloadDetail {
  return {
    id: t.id,
    peers: t.peers,
    ...(unreachable === undefined
      ? {}
      : { unreachable: { count: unreachable.length, ranges: rangesOf(unreachable) } }),
  };
}

/** The seed's chunk-assignment analysis of a finished download, under the daemon's α and β. */
export function analysisOf(
  d: PieceDistribution,
  users: ReadonlyMap<string, string>,
  weights: RuleWeights,
): AssignmentAnalysis {
  const byPieces = new Map<number, number>();
  for (const p of d.peers) if (p.pieces > 0) byPieces.set(p.pieces, (byPieces.get(p.pieces) ?? 0) + 1);
  return {
    alpha: weights.alpha ?? DEFAULT_SCHEDULER_OPTIONS.alpha,
    beta: weights.beta ?? DEFAULT_SCHEDULER_OPTIONS.beta,
    fetchedPieces: d.fetchedPieces,
    resumedPieces: d.resumedPieces,
    max: d.max,
    min: d.min,
    mean: Math.round(d.avg * 100) / 100,
    peers: d.peers.map((p) => ({
      peerId: p.peerId,
      userId: users.get(p.peerId) ?? null,
      pieces: p.pieces,
      score: Math.round(p.finalScore * 1000) / 1000,
      state: p.state,
      ...(p.banReason === undefined ? {} : { banReason: p.banReason }),
    })),
    byPieces: [...byPieces].sort((a, b) => a[0] - b[0]).map(([pieces, peers]) => ({ pieces, peers })),
    byScore: d.byScore,
  };
}

// Kept in peer.db's meta: the analysis outlives the daemon run the download ended in.
const analysisKey = (downloadId: number) => `download_analysis:${downloadId}`;

export function rememberAnalysis(store: MetaStore, downloadId: number, a: AssignmentAnalysis): void {
  store.setMeta(analysisKey(downloadId), JSON.stringify(a));
}

export function analysisFor(store: MetaStore, downloadId: number): AssignmentAnalysis | undefined {
  const raw = store.getMeta(analysisKey(downloadId));
  try {
    return raw === undefined ? undefined : (JSON.parse(raw) as AssignmentAnalysis);
  } catch {
    return undefined; // damaged: as if none was kept
  }
}
