/**
 * Every retry policy of Coterie, in two shapes: exponential backoff (pieces
 * and peer connections) and step tables (reconnecting to a tracker or a
 * store). Pure: the random source is injectable, so tests pass
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
  /** Delay before retry number `attempt` (1 = the first retry, 0 = the first try). */
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

/**
 * Step-table backoff: the reconnect policy of long-lived links (the peer's
 * tracker pool, the tracker's PostgreSQL listener). A table says the waits
 * outright, which reads better than a formula for a handful of steps.
 */
export interface StepBackoffOptions {
  /**
   * The wait before try n is `stepsMs[n]`; the last step repeats. Entry 0
   * is the first try's, normally 0, so a caller counting failures indexes
   * the table with that count.
   */
  stepsMs: readonly number[];
  /** Random spread of each wait, as a fraction (0.2 = ±20 %), so many clients do not reconnect in step. */
  jitter: number;
  random?: () => number;
}

/** The peer's tracker pool: a whole round of trackers failed n times → step n. */
export const TRACKER_RECONNECT_STEPS_MS: readonly number[] = Object.freeze([0, 250, 500, 1000, 2000, 4000]);
/** A tracker's LISTEN connection to PostgreSQL: short first steps, a lost listener misses events. */
export const LISTEN_RECONNECT_STEPS_MS: readonly number[] = Object.freeze([0, 100, 250, 500, 1000, 2000]);

export function createStepBackoff(options: StepBackoffOptions): Backoff {
  const { stepsMs, jitter } = options;
  if (stepsMs.length === 0 || stepsMs.some((s) => !(s >= 0)) || !(jitter >= 0 && jitter <= 1)) {
    throw new RangeError('backoff: need at least one step, every step ≥ 0, 0 ≤ jitter ≤ 1');
  }
  const random = options.random ?? Math.random;
  return {
    delayMs(attempt: number): number {
      const n = Math.min(Math.max(0, Math.floor(attempt)), stepsMs.length - 1);
      const base = stepsMs[n]!;
      return Math.max(0, Math.round(base + base * jitter * (random() * 2 - 1)));
    },
  };
}
