/**
 * Fixed-window failure counters (failed logins per user id and per address).
 * Soft state in memory: a restart forgets it, which only gives an attacker one
 * more window. Entries are pruned as windows expire so memory stays bounded by
 * the number of distinct keys that failed within one window.
 */
export interface FailureLimiter {
  /** Milliseconds until `key` may try again; 0 when it may now. */
  blockedForMs(key: string): number;
  recordFailure(key: string): void;
  reset(key: string): void;
}

export function createFailureLimiter(options: {
  maxFailures: number;
  windowMs: number;
  now: () => number;
}): FailureLimiter {
  const windows = new Map<string, { start: number; failures: number }>();
  let lastPrune = options.now();
  const prune = (now: number) => {
    if (now - lastPrune < options.windowMs) return;
    lastPrune = now;
    for (const [k, w] of windows) if (now - w.start >= options.windowMs) windows.delete(k);
  };
  return {
    blockedForMs(key) {
      const now = options.now();
      prune(now);
      const w = windows.get(key);
      if (w === undefined || now - w.start >= options.windowMs) return 0;
      return w.failures >= options.maxFailures ? options.windowMs - (now - w.start) : 0;
    },
    recordFailure(key) {
      const now = options.now();
      const w = windows.get(key);
      if (w === undefined || now - w.start >= options.windowMs) windows.set(key, { start: now, failures: 1 });
      else w.failures++;
    },
    reset(key) {
      windows.delete(key);
    },
  };
}
