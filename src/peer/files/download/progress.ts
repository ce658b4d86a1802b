import type { PeerReport } from '../../../core/scheduler.js';
import type { CoterieError } from '../../../protocol/errors.js';
import type { Clock } from '../../../wire/index.js';
import type { DownloadProgress, PeerConnectionState, PieceDistribution, SeederInfo } from './events.js';
import { DOWNLOAD_DEFAULTS } from './options.js';

/** A seeder as progress shows it: what the tracker said and how its connection stands. */
export interface LinkView {
  info: SeederInfo;
  state: PeerConnectionState;
  lastError: CoterieError | null;
}

/**
 * A download's clock-side counters: verified bytes, the rate (an exponential
 * average of samples), when a piece was last verified, and when progress was
 * last reported.
 */
export class ProgressMeter {
  readonly #clock: Clock;
  readonly startedAt: number;
  verifiedBytes = 0;
  lastVerifiedAt: number;
  #rate = 0;
  #sampleAt: number;
  #sampleBytes = 0;
  #reportedAt = Number.NEGATIVE_INFINITY; // the first tick reports progress

  constructor(clock: Clock) {
    this.#clock = clock;
    this.startedAt = clock.now();
    this.lastVerifiedAt = this.startedAt;
    this.#sampleAt = this.startedAt;
  }

  get rateBytesPerSec(): number {
    return this.#rate;
  }

  elapsedMs(): number {
    return Math.round(this.#clock.now() - this.startedAt);
  }

  /** Pieces kept from an earlier run: verified, but no part of this run's rate. */
  kept(bytes: number): void {
    this.verifiedBytes += bytes;
  }

  verified(bytes: number): void {
    this.verifiedBytes += bytes;
    this.#sampleBytes += bytes;
    this.lastVerifiedAt = this.#clock.now();
  }

  /** Takes a rate sample when one is due; true when progress is due (at most every `everyMs`). */
  tick(now: number, everyMs: number): boolean {
    const dt = now - this.#sampleAt;
    if (dt >= DOWNLOAD_DEFAULTS.rateSampleMs) {
      const inst = (this.#sampleBytes * 1000) / dt;
      this.#rate = this.#rate === 0 ? inst : 0.7 * this.#rate + 0.3 * inst;
      this.#sampleBytes = 0;
      this.#sampleAt = now;
    }
    if (now - this.#reportedAt < everyMs) return false;
    this.#reportedAt = now;
    return true;
  }
}

export function progressOf(o: {
  fileId: string;
  totalBytes: number;
  pieceCount: number;
  piecesVerified: number;
  meter: ProgressMeter;
  links: Iterable<LinkView>;
  reports: PeerReport[];
  /** Missing pieces no connected peer has. */
  unreachable?: number[];
}): DownloadProgress {
  const left = o.totalBytes - o.meter.verifiedBytes;
  const rate = o.meter.rateBytesPerSec;
  const reports = new Map(o.reports.map((p) => [p.peerId, p]));
  return {
    fileId: o.fileId,
    totalBytes: o.totalBytes,
    verifiedBytes: o.meter.verifiedBytes,
    piecesVerified: o.piecesVerified,
    pieceCount: o.pieceCount,
    rateBytesPerSec: Math.round(rate),
    etaSeconds: rate > 0 ? Math.ceil(left / rate) : left === 0 ? 0 : null,
    elapsedMs: o.meter.elapsedMs(),
    ...(o.unreachable === undefined ? {} : { unreachablePieces: o.unreachable }),
    peers: [...o.links].map((l) => {
      const r = reports.get(l.info.peerId);
      return {
        peerId: l.info.peerId,
        state: r?.state ?? 'gone',
        givenScore: l.info.score,
        score: r?.score ?? l.info.score,
        rateBytesPerSec: r?.rateBytesPerSec ?? 0,
        bytes: r?.bytes ?? 0,
        piecesAssigned: r?.piecesAssigned ?? 0,
        piecesVerified: r?.piecesVerified ?? 0,
        corruptPieces: r?.corruptPieces ?? 0,
        stalls: r?.stalls ?? 0,
        inFlightBlocks: r?.inFlightBlocks ?? 0,
        ...(r?.banReason === undefined ? {} : { banReason: r.banReason }),
        connection: l.state,
        address: l.info.address,
        ...(l.lastError ? { lastError: l.lastError.message } : {}),
      };
    }),
  };
}

/** The per-peer distribution report of a finished download (the seeds' chunk-assignment analysis). */
export function distributionOf(reports: PeerReport[], resumedPieces: number): PieceDistribution {
  const peers = reports
    .filter((p) => p.peerId !== '')
    .map((p) => ({
      peerId: p.peerId,
      givenScore: p.givenScore,
      finalScore: Math.round(p.score * 1000) / 1000,
      pieces: p.piecesVerified,
      bytes: p.bytes,
      corruptPieces: p.corruptPieces,
      stalls: p.stalls,
      state: p.state,
      ...(p.banReason === undefined ? {} : { banReason: p.banReason }),
    }));
  const counts = peers.map((p) => p.pieces);
  const fetched = counts.reduce((a, b) => a + b, 0);
  const byScore = new Map<number, { score: number; peers: number; pieces: number }>();
  for (const p of peers) {
    const score = Math.round(p.givenScore * 20) / 20;
    const row = byScore.get(score) ?? { score, peers: 0, pieces: 0 };
    row.peers++;
    row.pieces += p.pieces;
    byScore.set(score, row);
  }
  return {
    fetchedPieces: fetched,
    resumedPieces,
    min: counts.length ? Math.min(...counts) : 0,
    max: counts.length ? Math.max(...counts) : 0,
    avg: counts.length ? Math.round((fetched / counts.length) * 100) / 100 : 0,
    peers,
    byScore: [...byScore.values()].sort((a, b) => b.score - a.score),
  };
}
