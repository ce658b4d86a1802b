import { MAX_REPLICA_GROUPS_PER_MESSAGE, type ReplicasMessage } from '../../protocol/session-storage.js';

/** One group's part of a `replicas` report (protocol/session-storage.ts). */
export type ReplicaReport = ReplicasMessage['groups'][number];

/** The `replicas` messages that carry these reports: at most MAX_REPLICA_GROUPS_PER_MESSAGE groups each. */
export function reportsOf(reports: ReplicaReport[]): Omit<ReplicasMessage, 'id'>[] {
  const out: Omit<ReplicasMessage, 'id'>[] = [];
  for (let i = 0; i < reports.length; i += MAX_REPLICA_GROUPS_PER_MESSAGE) {
    out.push({ type: 'replicas', groups: reports.slice(i, i + MAX_REPLICA_GROUPS_PER_MESSAGE) });
  }
  return out;
}
