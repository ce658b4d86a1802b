import type { SchedulerActions } from '../../../core/scheduler.js';
import type { PieceClient } from '../../../wire/index.js';

/**
 * The scheduler's cancels and requests of one poll, sent to their seeders. Corked: all the frames
 * for one seeder leave in one write (one TLS record, one syscall).
 */
export function sendRequests(
  actions: Pick<SchedulerActions, 'cancels' | 'requests'>,
  clientOf: (peerId: string) => PieceClient | null | undefined,
): void {
  const corked = new Set<PieceClient>();
  for (const r of [...actions.cancels, ...actions.requests]) {
    const client = clientOf(r.peerId);
    if (client && !corked.has(client)) {
      client.cork();
      corked.add(client);
    }
  }
  for (const c of actions.cancels) clientOf(c.peerId)?.cancel(c);
  for (const r of actions.requests) clientOf(r.peerId)?.request(r);
  for (const client of corked) client.uncork();
}
