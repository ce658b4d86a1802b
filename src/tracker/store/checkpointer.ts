import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { WriteGate } from './write-gate.js';

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
 *
 * It takes that lock through the tracker's write gate (write-gate.ts): it asks,
 * the tracker lets it go between two write transactions, and writers that come
 * meanwhile wait on the event loop instead of in SQLite's busy handler.
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
// Waiting for the tracker's go (the write gate) to start the log over.
let asked = false;
const checkpoint = () => {
  if (asked) return;
  try {
    const [passive] = db.pragma('wal_checkpoint(PASSIVE)');
    if (passive.log < workerData.restartFrames) return;
    db.pragma('wal_checkpoint(PASSIVE)');
    asked = true;
    parentPort.postMessage({ restart: true });
  } catch (err) { parentPort.postMessage({ error: String(err) }); }
};
// Test hook (holdLock): a restart that holds the write lock until the test lets it go, as one
// whose fsync waits on a busy disk.
const hold = workerData.holdLock === undefined ? undefined : new Int32Array(workerData.holdLock);
const restart = () => {
  try {
    if (hold !== undefined && Atomics.load(hold, 0) === 1) {
      db.exec('BEGIN IMMEDIATE');
      Atomics.store(hold, 1, 1);
      Atomics.wait(hold, 0, 1);
      db.exec('COMMIT');
    }
    db.pragma('wal_checkpoint(RESTART)');
  } catch (err) { parentPort.postMessage({ error: String(err) }); }
  asked = false;
  parentPort.postMessage({ restarted: true });
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', (m) => {
  if (m === 'go') restart();
  if (m === 'stop') { clearInterval(timer); if (!asked) checkpoint(); db.close(); parentPort.close(); }
});
`;

/** Frames (pages) in the log beyond which the worker starts it over (RESTART): 16 MiB of 4 KiB pages. */
export const RESTART_FRAMES = 4096;

/** The longest the write gate stays closed for a restart the worker does not report done. */
const GATE_HOLD_LIMIT_MS = 10_000;

export function startCheckpointer(options: {
  path: string;
  intervalMs: number;
  /** Frames in the log beyond which it is started over (RESTART_FRAMES; tests use fewer). */
  restartFrames?: number;
  onError: (message: string) => void;
  /** Where the worker asks for the write lock to start the log over (write-gate.ts). */
  gate: WriteGate;
  /**
   * Test hook: while element 0 of this Int32Array's buffer is 1, a restart holds the write lock
   * (setting element 1 to 1) until it is set to 0 and notified.
   */
  holdLock?: SharedArrayBuffer;
}): Checkpointer {
  const { gate } = options;
  const modulePath = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      path: options.path,
      intervalMs: options.intervalMs,
      restartFrames: options.restartFrames ?? RESTART_FRAMES,
      modulePath,
      holdLock: options.holdLock,
    },
  });
  let gone = false;
  /** A restart the gate let go and the worker has not reported done. */
  let holding: ReturnType<typeof setTimeout> | undefined;
  const reopen = () => {
    clearTimeout(holding);
    holding = undefined;
    gate.open();
  };
  worker.on('message', (m: { error?: string; restart?: true; restarted?: true }) => {
    if (m.error) options.onError(m.error);
    if (m.restart) {
      gate.close(() => {
        if (gone) return gate.open();
        worker.postMessage('go');
        // Should the worker never answer, writers go on after a while (SQLite's busy_timeout then).
        holding = setTimeout(reopen, GATE_HOLD_LIMIT_MS);
        holding.unref();
      });
    }
    if (m.restarted) reopen();
  });
  worker.on('error', (err) => {
    options.onError(err.message);
    reopen();
  });
  // The tracker's server keeps the process alive; a lone checkpointer must not.
  worker.unref();
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      gone = true;
      reopen();
      resolve();
    }),
  );
  return {
    async stop() {
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
