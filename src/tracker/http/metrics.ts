import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** What the gauges read at each scrape: parts made after the metrics (the session hub, the store). */
export interface MetricSources {
  /** Open sessions by state: `hello` (no hello yet), `catching_up`, `live`. */
  sessionStates?: () => Record<string, number>;
  /** A PostgreSQL store's pool; undefined on SQLite (no series then). */
  pool?: () => { total: number; idle: number; waiting: number } | undefined;
}

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
  /** Message writes (group commit): seconds per transaction and messages per transaction. */
  messageCommitSeconds: Histogram;
  messageBatchSize: Histogram;
  /** The file GC (services/file-gc.ts): files removed, pages removed (reason: unreferenced, orphan), files waiting. */
  gcFiles: Counter;
  gcPages: Counter<'reason'>;
  gcWaiting: Gauge;
  /** Filled in by the tracker once the hub and the store exist. */
  sources: MetricSources;
}

export function createMetrics(): TrackerMetrics {
  const registry = new Registry();
  // The process's own (CPU, memory, event loop lag, GC, handles), on this tracker's registry.
  collectDefaultMetrics({ register: registry });
  const sources: MetricSources = {};
  new Gauge({
    name: 'coterie_sessions_by_state',
    help: 'WebSocket peer sessions by state: hello (waiting for the hello), catching_up, live',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const states = sources.sessionStates?.() ?? {};
      for (const state of ['hello', 'catching_up', 'live']) this.set({ state }, states[state] ?? 0);
    },
  });
  new Gauge({
    name: 'coterie_pg_pool_connections',
    help: "PostgreSQL store: the primary's connection pool (state: total, idle; waiting = queries waiting for a connection)",
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      const pool = sources.pool?.();
      if (pool === undefined) return;
      this.set({ state: 'total' }, pool.total);
      this.set({ state: 'idle' }, pool.idle);
      this.set({ state: 'waiting' }, pool.waiting);
    },
  });
  return {
    registry,
    sources,
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
    messageCommitSeconds: new Histogram({
      name: 'coterie_message_commit_seconds',
      help: 'seconds per message write transaction (a group commit of the sends queued meanwhile)',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    messageBatchSize: new Histogram({
      name: 'coterie_message_batch_size',
      help: 'messages per write transaction (group commit batch size, at most 4000)',
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 4000],
      registers: [registry],
    }),
    gcFiles: new Counter({
      name: 'coterie_gc_files_removed_total',
      help: 'files (rows and page references) removed by the garbage collection after they left every listing',
      registers: [registry],
    }),
    gcPages: new Counter({
      name: 'coterie_gc_pages_removed_total',
      help: 'manifest pages removed: unreferenced (the last file referring to them went) or orphan (never referred to, past the grace)',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    gcWaiting: new Gauge({
      name: 'coterie_gc_files_unlisted',
      help: 'files listed in no group kept for their grace or their replicas’ drops (at the sweeping tracker’s last run)',
      registers: [registry],
    }),
  };
}
