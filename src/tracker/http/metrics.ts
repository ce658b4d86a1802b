import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The tracker's Prometheus metrics, on a registry of its own (several trackers may share a process in tests). */
export interface TrackerMetrics {
  registry: Registry;
  requests: Counter<'method' | 'route' | 'status'>;
  errors: Counter<'code'>;
  sessions: Gauge;
  sessionsOpened: Counter;
  /** Seconds per request, by route pattern (seed 004's request timing). */
  requestSeconds: Histogram<'method' | 'route'>;
  /** Files of groups with a replication policy below their `min` verified replicas (the planning tracker's count). */
  underReplicated: Gauge;
  /** Replica bytes fetched by storage peers to the planner's orders, and the seconds each took from order to verified. */
  repairBytes: Counter;
  repairSeconds: Histogram;
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
    requestSeconds: new Histogram({
      name: 'coterie_http_request_seconds',
      help: 'HTTP request latency in seconds, by method and route pattern',
      labelNames: ['method', 'route'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    underReplicated: new Gauge({
      name: 'coterie_files_under_replicated',
      help: 'files with fewer verified replicas than their group’s min (from the last placement run of the planning tracker)',
      registers: [registry],
    }),
    repairBytes: new Counter({
      name: 'coterie_replica_bytes_total',
      help: 'bytes of replicas storage peers fetched and verified to the planner’s orders (placement and repair)',
      registers: [registry],
    }),
    repairSeconds: new Histogram({
      name: 'coterie_replica_seconds',
      help: 'seconds from a replica’s assignment to its report as verified',
      buckets: [0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
  };
}
