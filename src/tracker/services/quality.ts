import { applyReport, isFlagged, type QualityPolicy, type ScoreState } from '../../core/index.js';
import type { PeerReport, ReportResponse } from '../../protocol/api.js';
import { toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';

/**
 * Peer quality, the service: applies downloader reports to the stored
 * scores (the pure rules are in core/quality.ts) and tells the cluster.
 */

/** A stored score row as a state; undefined when the peer has none yet (a left join found no row). */
export function storedScore(
  row: { score: number | null; corrupt: number | null; updated_at: number | string | null } | undefined,
): ScoreState | undefined {
  if (row === undefined || row.score === null || row.corrupt === null || row.updated_at === null)
    return undefined;
  return { score: row.score, corrupt: row.corrupt, updatedAt: toNumber(row.updated_at) };
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
