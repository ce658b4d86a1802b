import { hashPiece } from '../../../core/piece-hash.js';

/** SHA-256 on libuv's thread pool: the native addon's functions (native/sha256.c). */
export interface ThreadPoolSha256 {
  sha256(data: Uint8Array): Promise<string>;
  /** Two views in one pass, half the CPU of two calls: only where the CPU has the SHA extensions. */
  sha256Pair?: (a: Uint8Array, b: Uint8Array) => Promise<[string, string]>;
}

/**
 * How long a piece waits for a second one to be hashed with. A download's pieces come in
 * bursts (in the transfer bench, 78 % of them less than 1 ms after the one before, 85 %
 * within 2 ms, at load 20), and a pair costs half the CPU of two pieces one at a time; a
 * piece waiting alone costs only latency, and a piece's slot more in memory.
 */
export const PARTNER_WAIT_MS = 2;

interface Job {
  data: Uint8Array;
  resolve: (digest: string) => void;
  reject: (err: Error) => void;
  /** When it was asked for (performance.now()): a piece alone waits at most PARTNER_WAIT_MS. */
  since: number;
}

/** A hasher as hasher.ts hands it out. */
export interface ThreadPoolHasher {
  hash(data: Uint8Array): Promise<string>;
  close(): Promise<void>;
}

/**
 * Hashes at most `n` jobs at once on the thread pool (the rest wait here, in order): the pool
 * also does the download's disk writes, which must not queue behind a backlog of hashes. Where
 * the addon hashes pairs, two waiting pieces go as one job, and a piece alone waits up to
 * PARTNER_WAIT_MS for a second.
 */
export function threadPoolHasher(native: ThreadPoolSha256, n: number): ThreadPoolHasher {
  let closed = false;
  let running = 0;
  const waiting: Job[] = [];
  /** Jobs on the thread pool: close() fails them (their answers then go nowhere). */
  const started = new Set<Job>();
  let partnerTimer: NodeJS.Timeout | undefined;

  const finish = (jobs: Job[], digests: string[] | Error) => {
    running--;
    for (const [i, job] of jobs.entries()) {
      if (!started.delete(job)) continue; // failed by close()
      if (digests instanceof Error) job.reject(digests);
      else job.resolve(digests[i]!);
    }
    pump();
  };

  const start = (jobs: Job[]) => {
    running++;
    for (const job of jobs) started.add(job);
    const pair = native.sha256Pair;
    const digests: Promise<string[]> =
      jobs.length === 2 && pair !== undefined
        ? pair(jobs[0]!.data, jobs[1]!.data)
        : native.sha256(jobs[0]!.data).then((d) => [d]);
    digests.then(
      (d) => finish(jobs, d),
      (err: Error) => finish(jobs, err),
    );
  };

  const pump = () => {
    while (running < n && waiting.length > 0) {
      if (native.sha256Pair !== undefined && waiting.length === 1) {
        // Alone: wait for a partner, unless it has waited long enough already.
        const left = waiting[0]!.since + PARTNER_WAIT_MS - performance.now();
        if (left > 0) {
          partnerTimer ??= setTimeout(() => {
            partnerTimer = undefined;
            pump();
          }, left);
          return;
        }
      }
      start(waiting.splice(0, native.sha256Pair === undefined ? 1 : 2));
    }
    if (waiting.length === 0 && partnerTimer !== undefined) {
      clearTimeout(partnerTimer);
      partnerTimer = undefined;
    }
  };

  return {
    hash(data) {
      if (closed) return Promise.resolve(hashPiece(data));
      return new Promise<string>((resolve, reject) => {
        waiting.push({ data, resolve, reject, since: performance.now() });
        pump();
      });
    },
    close() {
      closed = true;
      if (partnerTimer !== undefined) clearTimeout(partnerTimer);
      partnerTimer = undefined;
      const err = new Error('hasher closed');
      for (const job of waiting.splice(0)) job.reject(err);
      for (const job of started) job.reject(err);
      started.clear();
      return Promise.resolve();
    },
  };
}
