/** A snake_case column name as the camelCase field the records use (`manifest_json` → `manifestJson`). */
type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

/** A table's row with its columns renamed as record fields, types kept. */
export type CamelRow<R> = { [K in keyof R & string as Camel<K>]: R[K] };

/**
 * One row of peer.db as a record: every column kept, renamed to camelCase. For
 * tables whose records are their columns one for one (shares, replicas, offers);
 * those that convert values map by hand.
 */
export function camelRow<R extends object>(row: R): CamelRow<R> {
  return Object.fromEntries(
    Object.entries(row).map(([k, v]) => [k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()), v]),
  ) as CamelRow<R>;
}
