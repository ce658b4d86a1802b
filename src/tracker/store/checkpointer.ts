import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints copy the log into the database file and fsync it. Run on
 * the event loop (SQLite's automatic checkpoints), they stall every request
 * for as long as the disk takes; so a worker thread with its own connection
 * checkpoints instead (PASSIVE: never blocks the writer or readers).
 *
 * PASSIVE alone is not enough under a steady stream of commits: the log is
 * written over from its start only when a writer begins after every frame was
 * copied back, and with a commit every half millisecond that moment never
 * comes. The log then grew to `wal_autocheckpoint` (20,000 pages, in about
 * 2 s at 2,000 messages/s) and the tracker's own thread checkpointed, two
 * fsyncs on the event loop: 10–25 ms during which no message moved, the tail
 * of push latency (docs/performance.md). So once the log holds `restartFrames`
 * frames, the worker copies back what it can without blocking anyone, then
 * checkpoints the little written since with RESTART: it holds the write lock
 * for that remainder only, and the next commit starts the log over.
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
  try {
    const [passive] = db.pragma('wal_checkpoint(PASSIVE)');
    if (passive.log < workerData.restartFrames) return;
    db.pragma('wal_checkpoint(PASSIVE)');
    db.pragma('wal_checkpoint(RESTART)');
  } catch (err) { parentPort.postMessage({ error: String(err) }); }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'stop') { clearInterval(timer); checkpoint(); db.close(); parentPort.close(); }
});
`;

/** Frames (pages) in the log beyond which the worker starts it over (RESTART): 16 MiB of 4 KiB pages. */
export const RESTART_FRAMES = 4096;

export function startCheckpointer(options: {
  path: string;
  intervalMs: number;
  /** Frames in the log beyond which it is started over (RESTART_FRAMES; tests use fewer). */
  restartFrames?: number;
  onError: (message: string) => void;
}): Checkpointer {
  const modulePath = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      path: options.path,
      intervalMs: options.intervalMs,
      restartFrames: options.restartFrames ?? RESTART_FRAMES,
      modulePath,
    },
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
