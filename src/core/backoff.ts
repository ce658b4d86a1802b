/**
 * Exponential backoff with jitter: the retry policy for pieces and peer
 * connections. Pure: the random source is injectable, so tests pass
 * `{ jitter: 0 }` or a seeded `random` and get exact delays.
 */
export interface BackoffOptions {
  /** First delay. */
  baseMs: number;
  /** No delay exceeds this. */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /**
   * Fraction of the delay that is random (0 = none, 1 = "full jitter"):
   * spreads retries of many downloaders so they do not hit a seeder at once.
   */
  jitter: number;
  random?: () => number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  baseMs: 200,
  maxMs: 10_000,
  factor: 2,
  jitter: 0.5,
});

export interface Backoff {
  /** Delay before retry number `attempt` (1 = the first retry). */
  delayMs(attempt: number): number;
}

export function createBackoff(options: Partial<BackoffOptions> = {}): Backoff {
  const o = { ...DEFAULT_BACKOFF, ...options };
  if (!(o.baseMs >= 0 && o.maxMs >= o.baseMs && o.factor >= 1 && o.jitter >= 0 && o.jitter <= 1)) {
    throw new RangeError('backoff: need 0 ≤ baseMs ≤ maxMs, factor ≥ 1, 0 ≤ jitter ≤ 1');
  }
  const random = o.random ?? Math.random;
  return {
    delayMs(attempt: number): number {
      const n = Math.max(1, Math.floor(attempt));
      const raw = Math.min(o.maxMs, o.baseMs * o.factor ** (n - 1));
      // Jitter takes off up to `jitter` of the delay, never adds: the cap stays a cap.
      return Math.round(raw * (1 - o.jitter * random()));
    },
  };
}
