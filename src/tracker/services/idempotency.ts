import type { ServiceDeps } from './context.js';

/**
 * Idempotency keys: a client retrying a write (its tracker died before it
 * heard the answer) sends the same key; any tracker of the cluster answers
 * with the stored response instead of running the write again. Keys are
 * scoped by caller, so one user cannot read another's answers.
 *
 * The answer is stored right after the write commits. A tracker killed in
 * the instant between the two leaves the key unstored: the retry then runs
 * again, and the writes themselves are idempotent or refuse duplicates
 * (ON CONFLICT, primary keys), so nothing is stored twice.
 */
export interface StoredResponse {
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
          .onConflict((oc) => oc.columns(['scope', 'idem_key']).doNothing())
          .execute();
      },
    };
  };
}
