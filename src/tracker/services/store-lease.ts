import type { Kysely } from 'kysely';
import type { Database } from '../store/index.js';

/**
 * A lease held in the store (`storage_leases`, one row per name): exactly one
 * tracker of a cluster does the named work at a time (placement, garbage
 * collection). The holder renews it at each run; another tracker takes it
 * over once it has expired, so a tracker that dies hands the work on after
 * at most `leaseMs`. One conditional upsert: atomic on SQLite and
 * PostgreSQL alike. True when `holder` holds it now.
 */
export async function takeLease(
  db: Kysely<Database>,
  name: string,
  holder: string,
  t: number,
  leaseMs: number,
): Promise<boolean> {
  const r = await db
    .insertInto('storage_leases')
    .values({ name, holder, expires_at: t + leaseMs })
    .onConflict((oc) =>
      oc
        .column('name')
        .doUpdateSet({ holder, expires_at: t + leaseMs })
        .where((eb) =>
          eb.or([eb('storage_leases.holder', '=', holder), eb('storage_leases.expires_at', '<', t)]),
        ),
    )
    .executeTakeFirst();
  return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
}
