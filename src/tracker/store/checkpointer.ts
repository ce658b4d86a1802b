import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints copy the log into the database file and fsync it. Run on
 * the event loop (SQLite's automatic checkpoints), they stall every request
 * for as long as the disk takes; so a worker thread with its own connection
 * checkpoints instead (PASSIVE: never blocks the writer or readers).
 */
export interface Checkpointer {
  stop(): Promise<void>;
}

// The worker is inline (no file to resolve from src/ or dist/); CommonJS, as eval'd workers are.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.modulePath);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
const checkpoint = () => {
  try { db.pragma('wal_checkpoint(PASSIVE)'); } catch (err) { parentPort.postMessage({ error: String(err) }); }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); }
});
`;

export function startCheckpointer(options: {
  path: string;
  intervalMs: number;
  onError: (message: string) => void;
}): Checkpointer {
  const modulePath = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path: options.path, intervalMs: options.intervalMs, modulePath },
  });
  worker.on('message', (m: { error?: string }) => {
    if (m.error) options.onError(m.error);
  });
  worker.on('error', (err) => options.onError(err.message));
  // The tracker's server keeps the process alive; a lone checkpointer must not.
  worker.unref();
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
