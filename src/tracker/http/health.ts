import type { FastifyInstance } from 'fastify';
import { Health, Ready, type StoreHealth } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';

/**
 * /healthz: the process lives (and where an acknowledged write is kept).
 * /readyz: it can serve, that is its store answers: a PostgreSQL store has a
 * primary (a load balancer takes a tracker whose store is failing over out of
 * rotation; the peers' own pool moves on UNAVAILABLE).
 */
export interface HealthSource {
  trackerId: string;
  version: string;
  sessions(): number;
  store(): StoreHealth;
}

/** What the store's readiness failure tells a client: try again shortly. */
const READY_RETRY_AFTER_SECONDS = 1;

export function registerHealthRoutes(app: FastifyInstance, source: HealthSource): void {
  app.get('/healthz', { schema: { response: { 200: Health } } }, async () => ({
    status: 'ok' as const,
    trackerId: source.trackerId,
    version: source.version,
    sessions: source.sessions(),
    store: source.store(),
  }));

  app.get('/readyz', { schema: { response: { 200: Ready } } }, async () => {
    const store = source.store();
    if (store.dialect === 'postgres' && store.primary === undefined) {
      throw new CoterieError('UNAVAILABLE', 'the store has no primary answering (a failover?)', {
        details: { retryAfterSeconds: READY_RETRY_AFTER_SECONDS },
      });
    }
    return { status: 'ready' as const };
  });
}
