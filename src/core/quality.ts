import type { PeerReport } from '../protocol/api.js';

/**
 * Peer quality: a score in [0, 1] per peer (0.5 = unknown) moved by each
 * downloader report and drifting back to 0.5 with a half-life, plus a
 * decayed count of corrupt pieces: a peer reported corrupt repeatedly is
 * flagged and listed last. The tracker keeps the states (its quality
 * service); the peer uses the neutral score for a seeder not yet scored.
 */
export interface ScoreState {
  score: number;
  corrupt: number;
  updatedAt: number;
}

export interface QualityPolicy {
  scoreHalfLifeMs: number;
  corruptFlagThreshold: number;
}

/** The score of a peer nobody reported yet, and where every score drifts back to. */
export const NEUTRAL_SCORE = 0.5;
/** How much one report moves the score: several consistent reports are needed to go far. */
const REPORT_WEIGHT = 0.2;
/** Throughput at which a clean report counts half way between "ok" and "perfect". */
const HALF_SPEED_BYTES_PER_SECOND = 1024 * 1024;

export function decayed(state: ScoreState, now: number, halfLifeMs: number): ScoreState {
  const f = 2 ** (-Math.max(0, now - state.updatedAt) / halfLifeMs);
  return {
    score: NEUTRAL_SCORE + (state.score - NEUTRAL_SCORE) * f,
    corrupt: state.corrupt * f,
    updatedAt: Math.max(now, state.updatedAt),
  };
}

/** What one report says about a peer, in [0, 1]. Corrupt pieces weigh most; faster clean transfers score higher. */
export function observation(
  r: Pick<PeerReport, 'bytes' | 'seconds' | 'failedPieces' | 'corruptPieces'>,
): number {
  if (r.corruptPieces > 0) return 0;
  const rate = r.seconds > 0 ? r.bytes / r.seconds : r.bytes > 0 ? HALF_SPEED_BYTES_PER_SECOND : 0;
  const speed = Number.isFinite(rate) ? rate / (rate + HALF_SPEED_BYTES_PER_SECOND) : 1;
  const clean = r.bytes > 0 ? 0.6 + 0.4 * speed : NEUTRAL_SCORE;
  return Math.max(0, clean - 0.15 * r.failedPieces);
}

export function applyReport(
  state: ScoreState | undefined,
  report: Pick<PeerReport, 'bytes' | 'seconds' | 'failedPieces' | 'corruptPieces'>,
  now: number,
  policy: QualityPolicy,
): ScoreState {
  const base = decayed(
    state ?? { score: NEUTRAL_SCORE, corrupt: 0, updatedAt: now },
    now,
    policy.scoreHalfLifeMs,
  );
  return {
    score: Math.min(1, Math.max(0, base.score * (1 - REPORT_WEIGHT) + observation(report) * REPORT_WEIGHT)),
    corrupt: base.corrupt + Math.min(report.corruptPieces, 1000),
    updatedAt: base.updatedAt,
  };
}

export function isFlagged(state: ScoreState, policy: QualityPolicy): boolean {
  return state.corrupt >= policy.corruptFlagThreshold;
}

/** The score and flag as listed now, from the last stored state (none: a peer nobody reported). */
export function currentQuality(
  state: ScoreState | undefined,
  now: number,
  policy: QualityPolicy,
): { score: number; flagged: boolean } {
  if (state === undefined) return { score: NEUTRAL_SCORE, flagged: false };
  const s = decayed(state, now, policy.scoreHalfLifeMs);
  return { score: Math.round(s.score * 1000) / 1000, flagged: isFlagged(s, policy) };
}
