import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';
import { CoterieError } from '../../protocol/errors.js';
import { statementName } from './prepared.js';
import type { PrimaryLocator } from './primary.js';

/**
 * The errors of a failover, and what the store does with them. A query that
 * fails this way tells the locator (primary.ts) to find the primary again,
 * and reaches the caller as UNAVAILABLE with a retry hint. A transaction that
 * failed before its COMMIT was sent did not happen: it runs again once a
 * primary answers. One that failed during its COMMIT may or may not have
 * happened: it is never run again here; the client retries with its
 * idempotency key, and the tracker answers from the key's marker if the
 * first try committed (http/app.ts, idempotency-context.ts).
 */

/** SQLSTATEs of a server that is no longer a writable primary (read_only_sql_transaction, shutdowns). */
const FAILOVER_SQLSTATES = new Set(['25006', '57P01', '57P02', '57P03']);
/** Socket errors of a host gone. */
const FAILOVER_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
/** node-postgres reports a lost connection by message only. */
const FAILOVER_MESSAGES =
  /Connection terminated|not queryable|timeout exceeded when trying to connect|Query read timeout|pool after calling end/i;
const RETRY_AFTER_SECONDS = 1;

const converted = new WeakSet<object>();
const commitsUnknown = new WeakSet<object>();

export function isFailoverError(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  if (converted.has(err)) return true;
  const { code, message } = err as { code?: unknown; message?: unknown };
  if (
    typeof code === 'string' &&
    (FAILOVER_SQLSTATES.has(code) || code.startsWith('08') || FAILOVER_ERRNOS.has(code))
  ) {
    return true;
  }
  return typeof message === 'string' && FAILOVER_MESSAGES.test(message);
}

/** The error a caller sees: UNAVAILABLE with a retry hint (`retry-after` on HTTP). */
export function failoverUnavailable(err: unknown): CoterieError {
  if (converted.has(err as object)) return err as CoterieError;
  const e = new CoterieError(
    'UNAVAILABLE',
    `the store's primary failed (${(err as Error).message || 'connection lost'}): a failover may be under way, try again in ${RETRY_AFTER_SECONDS} s`,
    { cause: err, details: { retryAfterSeconds: RETRY_AFTER_SECONDS } },
  );
  converted.add(e);
  return e;
}

/** A failover error met during COMMIT: the write's outcome is unknown. Other errors pass unchanged. */
export function duringCommit(err: unknown): unknown {
  if (!isFailoverError(err)) return err;
  const e = new CoterieError(
    'UNAVAILABLE',
    `the store's primary was lost during a commit (${(err as Error).message}): the write may have happened; retry it with the same idempotency key`,
    { cause: err, details: { retryAfterSeconds: RETRY_AFTER_SECONDS } },
  );
  converted.add(e);
  commitsUnknown.add(e);
  return e;
}

export function isCommitOutcomeUnknown(err: unknown): boolean {
  return typeof err === 'object' && err !== null && commitsUnknown.has(err);
}

/** Worth running the whole transaction again: it failed by a failover, before its commit. */
export function isRerunnable(err: unknown): boolean {
  return isFailoverError(err) && !isCommitOutcomeUnknown(err);
}

/**
 * Kysely's pool, over the current primary's pg.Pool: connections come from
 * whichever host is primary now, and a failover error on one makes the
 * locator look again (only if it is still the primary the client came from).
 */
export function failoverPool(locator: PrimaryLocator): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      const { pool, generation } = await locator.current();
      const failed = (err: unknown): never => {
        if (!isFailoverError(err)) throw err;
        locator.suspect(generation);
        throw failoverUnavailable(err);
      };
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        return failed(err);
      }
      // A checked-out client whose server dies emits 'error' (the pool listens only to idle ones):
      // unheard, it would crash the tracker.
      const lost = () => locator.suspect(generation);
      client.on('error', lost);
      return {
        query: ((text: unknown, values?: unknown[]) => {
          if (typeof text !== 'string') return client.query(text as never);
          const name = statementName(text);
          const run = name === undefined ? client.query(text, values) : client.query({ name, text, values });
          return run.catch(failed);
        }) as unknown as PostgresPoolClient['query'],
        release: () => {
          client.off('error', lost);
          client.release();
        },
      };
    },
    end: () => locator.close(),
  };
}
