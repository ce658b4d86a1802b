/**
 * Token buckets per user for sends: `ratePerSecond` sustained, `burst` at
 * once. Soft state in memory (a restart refills every bucket). Idle buckets
 * are dropped when full again, so memory follows the users sending right now.
 */
export interface SendLimiter {
  /** Takes one token; returns 0 when allowed, else milliseconds until one is available. */
  take(userId: string): number;
}

export function createSendLimiter(options: {
  ratePerSecond: number;
  burst: number;
  now: () => number;
}): SendLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  let lastPrune = options.now();
  const PRUNE_EVERY_MS = 10_000;
  return {
    take(userId) {
      const t = options.now();
      if (t - lastPrune > PRUNE_EVERY_MS) {
        lastPrune = t;
        for (const [k, b] of buckets) {
          if (b.tokens + ((t - b.at) / 1000) * options.ratePerSecond >= options.burst) buckets.delete(k);
        }
      }
      let b = buckets.get(userId);
      if (b === undefined) {
        b = { tokens: options.burst, at: t };
        buckets.set(userId, b);
      }
      b.tokens = Math.min(options.burst, b.tokens + ((t - b.at) / 1000) * options.ratePerSecond);
      b.at = t;
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return 0;
      }
      return Math.ceil(((1 - b.tokens) / options.ratePerSecond) * 1000);
    },
  };
}
