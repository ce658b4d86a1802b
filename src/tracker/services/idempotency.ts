import type { ServiceDeps } from './context.js';

/**
 * Idempotency keys: a client retrying a write (its tracker died before it
 * heard the answer) sends the same key; any tracker of the cluster answers
 * with the stored response instead of running the write again. Keys are
 * scoped by caller, so one user cannot read another's answers.
 *
 * The write's transaction also writes a marker for the key (status 0, with
 * the transaction's result), atomically (store/idempotency-context.ts); the
 * answer replaces it right after. A tracker killed in between leaves the
 * marker: the retry knows the write happened (see http/app.ts). Writes made
 * outside a transaction have no marker; they are idempotent or refuse
 * duplicates (ON CONFLICT, primary keys), so nothing is stored twice.
 */
export interface StoredResponse {
  /** 0: the write committed, its answer was never recorded (body: the transaction's result). */
  status: number;
  body: unknown;
}

export interface IdempotencyService {
  lookup(scope: string, key: string): Promise<StoredResponse | undefined>;
  remember(scope: string, key: string, route: string, response: StoredResponse): Promise<void>;
}

export function createIdempotencyService() {
  return (deps: ServiceDeps): IdempotencyService => {
    const { store, now } = deps;
    return {
      async lookup(scope, key) {
        const row = await store.db
          .selectFrom('idempotency_keys')
          .select(['status', 'body'])
          .where('scope', '=', scope)
          .where('idem_key', '=', key)
          .executeTakeFirst();
        if (row === undefined) return undefined;
        return { status: row.status, body: JSON.parse(row.body) as unknown };
      },
      async remember(scope, key, route, response) {
        await store.db
          .insertInto('idempotency_keys')
          .values({
            scope,
            idem_key: key,
            route,
            status: response.status,
            body: JSON.stringify(response.body ?? null),
            created_at: now(),
          })
          .onConflict((oc) =>
            oc.columns(['scope', 'idem_key']).doUpdateSet({
              status: response.status,
              body: JSON.stringify(response.body ?? null),
            }),
          )
          .execute();
      },
    };
  };
}
