import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PRIVATE_FILE_MODE } from '../os/private-files.js';
import type { StoreHealth } from '../protocol/api.js';
import type { GcSettings } from './config.js';
import type { TrackerMetrics } from './http/metrics.js';
import type { ServiceDeps } from './services/context.js';
import { createFileGc, type FileGc } from './services/file-gc.js';
import { createStoragePlanner, type StoragePlanner } from './services/storage-planner.js';
import type { Store } from './store/index.js';

/** The store as /healthz and the start log line say it. */
export function storeHealth(store: Store): StoreHealth {
  const status = store.primary?.status();
  if (status === undefined) return { dialect: store.dialect, acknowledgedOn: 'one-machine' };
  return {
    dialect: store.dialect,
    ...(status.primary === undefined ? {} : { primary: status.primary }),
    ...(status.replication ?? {}),
  };
}

/** This tracker's id among a cluster's, kept in `<dataDir>/tracker.id` (made at the first start). */
export function trackerIdFor(dataDir: string): string {
  const file = join(dataDir, 'tracker.id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{8,64}$/.test(id)) return id;
  } catch {
    // first start: create it below
  }
  const id = randomUUID();
  writeFileSync(file, `${id}\n`, { mode: PRIVATE_FILE_MODE });
  return id;
}

/**
 * The store's background workers, started: the storage planner and the file
 * GC (each on the one tracker of a cluster holding its lease), their counts
 * on /metrics.
 */
export function startStoreWorkers(
  cfg: GcSettings & { storageGraceMs: number; storageFetchStallMs: number },
  trackerId: string,
  logger: Logger,
  metrics: TrackerMetrics,
  deps: ServiceDeps,
): { planner: StoragePlanner; gc: FileGc; stop(): Promise<void> } {
  const planner = createStoragePlanner({
    trackerId,
    storageGraceMs: cfg.storageGraceMs,
    fetchStallMs: cfg.storageFetchStallMs,
    logger,
    onUnderReplicated: (n) => metrics.underReplicated.set(n),
  })(deps);
  const gc = createFileGc({
    trackerId,
    graceMs: cfg.gcGraceMs,
    orphanGraceMs: cfg.gcOrphanGraceMs,
    intervalMs: cfg.gcIntervalMs,
    logger,
    onSwept: (c) => {
      metrics.gcFiles.inc(c.files);
      metrics.gcPages.inc({ reason: 'unreferenced' }, c.pages);
      metrics.gcPages.inc({ reason: 'orphan' }, c.orphans);
      metrics.gcWaiting.set(c.waiting);
    },
  })(deps);
  planner.start();
  gc.start();
  return {
    planner,
    gc,
    async stop() {
      await planner.stop();
      await gc.stop();
    },
  };
}
