import { type Kysely, sql } from 'kysely';
import type { Database } from '../store/index.js';
import { toNumber } from '../store/index.js';

/**
 * Fixed-window failure counters (failed logins per user id and per address),
 * kept in the store: the trackers of a cluster share one count, so a limit
 * of 5 failures per user stays 5 however many trackers an attacker cycles
 * through. A window row is reset by the first failure after it expires, and
 * expired rows are deleted at most once per window.
 */
export interface FailureLimiter {
  /** Milliseconds until `key` may try again; 0 when it may now. */
  blockedForMs(key: string): Promise<number>;
  recordFailure(key: string): Promise<void>;
  reset(key: string): Promise<void>;
}

export function createFailureLimiter(options: {
  db: Kysely<Database>;
  /** What the keys are ('user', 'address'): one table holds every limiter's rows. */
  scope: string;
  maxFailures: number;
  windowMs: number;
  now: () => number;
}): FailureLimiter {
  const { db, scope, maxFailures, windowMs, now } = options;
  let lastPrune = now();
  const prune = async (t: number) => {
    if (t - lastPrune < windowMs) return;
    lastPrune = t;
    await db
      .deleteFrom('login_failures')
      .where('scope', '=', scope)
      .where('window_start', '<=', t - windowMs)
      .execute();
  };
  return {
    async blockedForMs(key) {
      const row = await db
        .selectFrom('login_failures')
        .select(['window_start', 'failures'])
        .where('scope', '=', scope)
        .where('failure_key', '=', key)
        .executeTakeFirst();
      if (row === undefined) return 0;
      const age = now() - toNumber(row.window_start);
      if (age >= windowMs || row.failures < maxFailures) return 0;
      return windowMs - age;
    },
    async recordFailure(key) {
      const t = now();
      const expired = sql<boolean>`login_failures.window_start <= ${t - windowMs}`;
      // One statement, so that failures counted at once through several trackers all count.
      await db
        .insertInto('login_failures')
        .values({ scope, failure_key: key, window_start: t, failures: 1 })
        .onConflict((oc) =>
          oc.columns(['scope', 'failure_key']).doUpdateSet({
            failures: sql<number>`CASE WHEN ${expired} THEN 1 ELSE login_failures.failures + 1 END`,
            window_start: sql<number>`CASE WHEN ${expired} THEN ${t} ELSE login_failures.window_start END`,
          }),
        )
        .execute();
      await prune(t);
    },
    async reset(key) {
      await db
        .deleteFrom('login_failures')
        .where('scope', '=', scope)
        .where('failure_key', '=', key)
        .execute();
    },
  };
}
