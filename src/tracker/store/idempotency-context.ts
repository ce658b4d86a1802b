import { AsyncLocalStorage } from 'node:async_hooks';
import type { Transaction } from 'kysely';
import type { Database } from './schema.js';

/**
 * The idempotency key of the request being served, if it sent one. The first
 * transaction the request commits also writes a marker row for the key
 * (status 0: "committed, answer not yet recorded"), atomically with the
 * write: a retry after the tracker died then knows the write happened, even
 * if the answer was never recorded (see http/app.ts).
 */
export interface IdempotentWrite {
  scope: string;
  key: string;
  route: string;
  at: number;
  marked: boolean;
}

export const idempotencyContext = new AsyncLocalStorage<IdempotentWrite>();

/** Wraps a transaction body so that it writes the marker of the current request (captured now). */
export function markingIdempotency<T>(
  fn: (trx: Transaction<Database>) => Promise<T>,
): (trx: Transaction<Database>) => Promise<T> {
  const write = idempotencyContext.getStore();
  if (write === undefined || write.marked) return fn;
  return async (trx) => {
    const value = await fn(trx);
    if (!write.marked) {
      await trx
        .insertInto('idempotency_keys')
        .values({
          scope: write.scope,
          idem_key: write.key,
          route: write.route,
          status: 0,
          body: JSON.stringify(value ?? null),
          created_at: write.at,
        })
        .onConflict((oc) => oc.columns(['scope', 'idem_key']).doNothing())
        .execute();
      write.marked = true;
    }
    return value;
  };
}

/**
 * Whether the current request's marker is written, as it is now: a transaction that failed and
 * runs again must write the marker again (the first try's rolled back with it).
 */
export function idempotencyRestorePoint(): () => void {
  const write = idempotencyContext.getStore();
  const marked = write?.marked;
  return () => {
    if (write !== undefined && marked === false) write.marked = false;
  };
}
