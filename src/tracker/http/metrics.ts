import { Counter, Gauge, Registry } from 'prom-client';

/** The tracker's Prometheus metrics, on a registry of its own (several trackers may share a process in tests). */
export interface TrackerMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  errors: Counter<'code'>;
  sessions: Gauge;
  sessionsOpened: Counter;
}

export function createMetrics(): TrackerMetrics {
  const registry = new Registry();
  return {
    registry,
    requests: new Counter({
      name: 'coterie_http_requests_total',
      help: 'HTTP requests served, by method, route pattern and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers: [registry],
    }),
    errors: new Counter({
      name: 'coterie_errors_total',
      help: 'API errors returned, by error code',
      labelNames: ['code'] as const,
      registers: [registry],
    }),
    sessions: new Gauge({
      name: 'coterie_sessions',
      help: 'WebSocket peer sessions currently open',
      registers: [registry],
    }),
    sessionsOpened: new Counter({
      name: 'coterie_sessions_opened_total',
      help: 'WebSocket peer sessions opened since start',
      registers: [registry],
    }),
  };
}
