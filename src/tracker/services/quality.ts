import type { PeerReport, ReportResponse } from '../../protocol/api.js';
import { toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';

/**
 * Peer quality: a score in [0, 1] per peer (0.5 = unknown) moved by each
 * downloader report and drifting back to 0.5 with a half-life, plus a
 * decayed count of corrupt pieces: a peer reported corrupt repeatedly is
 * flagged and listed last. Pure functions first, the service after.
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

/** The score and flag as listed now, from a stored row (or none). */
export function currentQuality(
  row: { score: number | null; corrupt: number | null; updated_at: number | string | null } | undefined,
  now: number,
  policy: QualityPolicy,
): { score: number; flagged: boolean } {
  if (row === undefined || row.score === null || row.corrupt === null || row.updated_at === null) {
    return { score: NEUTRAL_SCORE, flagged: false };
  }
  const s = decayed(
    { score: row.score, corrupt: row.corrupt, updatedAt: toNumber(row.updated_at) },
    now,
    policy.scoreHalfLifeMs,
  );
  return { score: Math.round(s.score * 1000) / 1000, flagged: isFlagged(s, policy) };
}

export interface QualityService {
  report(reporterUserId: string, reports: PeerReport[]): Promise<ReportResponse>;
  readonly policy: QualityPolicy;
}

export function createQualityService(policy: QualityPolicy) {
  return (deps: ServiceDeps): QualityService => {
    const { store, bus, now } = deps;
    return {
      policy,
      async report(_reporter, reports) {
        const t = now();
        const results = new Map<string, ScoreState>();
        // Reports touching the same peer apply in order within one call.
        await store.transaction(async (trx) => {
          const ids = [...new Set(reports.map((r) => r.peerId))];
          const rows = await trx.selectFrom('peer_scores').selectAll().where('peer_id', 'in', ids).execute();
          for (const row of rows) {
            results.set(row.peer_id, {
              score: row.score,
              corrupt: row.corrupt,
              updatedAt: toNumber(row.updated_at),
            });
          }
          const counts = new Map<string, number>(rows.map((r) => [r.peer_id, toNumber(r.reports)]));
          for (const r of reports) {
            results.set(r.peerId, applyReport(results.get(r.peerId), r, t, policy));
            counts.set(r.peerId, (counts.get(r.peerId) ?? 0) + 1);
          }
          for (const [peerId, s] of results) {
            const values = {
              peer_id: peerId,
              score: s.score,
              corrupt: s.corrupt,
              reports: counts.get(peerId) ?? 1,
              updated_at: s.updatedAt,
            };
            await trx
              .insertInto('peer_scores')
              .values(values)
              .onConflict((oc) =>
                oc.column('peer_id').doUpdateSet({
                  score: values.score,
                  corrupt: values.corrupt,
                  reports: values.reports,
                  updated_at: values.updated_at,
                }),
              )
              .execute();
          }
        });
        await bus.publish({ kind: 'scores_changed', peerIds: [...results.keys()].slice(0, 64), at: t });
        return {
          accepted: reports.length,
          scores: [...results].map(([peerId, s]) => ({
            peerId,
            score: Math.round(s.score * 1000) / 1000,
            flagged: isFlagged(s, policy),
          })),
        };
      },
    };
  };
}
