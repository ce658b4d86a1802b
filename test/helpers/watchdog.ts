import { Worker } from 'node:worker_threads';

/**
 * Kills this test process if `ms` pass before the returned stop() is called.
 * For tests whose failure is native code spinning with the event loop
 * blocked, where no timer (vitest's own timeout included) can fire: the
 * watchdog waits on its own thread, and vitest reports the killed test file
 * as failed instead of the run hanging.
 */
export function watchdog(ms: number, what: string): () => void {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(
    `const { workerData: w } = require('node:worker_threads');
     if (Atomics.wait(w.flag, 0, 0, w.ms) === 'timed-out') {
       process.stderr.write('watchdog: ' + w.what + ' still running after ' + w.ms + ' ms: killing the test process\\n');
       process.kill(process.pid, 'SIGKILL');
     }`,
    { eval: true, workerData: { flag, ms, what } },
  );
  worker.unref();
  return () => {
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  };
}
