import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../../store/index.js';
import { type Prepared, prepared } from '../../store/index.js';
import { MESSAGE_COLUMNS } from './model.js';

export type Db = Transaction<Database>;

/** A stream's messages in seq order, with the columns toStoredMessage reads; callers add their bounds. */
export function messagesOf(db: Kysely<Database>, streamId: string) {
  return db.selectFrom('messages').select(MESSAGE_COLUMNS).where('stream_id', '=', streamId).orderBy('seq');
}

/** Rows per multi-row INSERT: 7 columns × 500 stays far below SQLite's and PostgreSQL's variable limits. */
export const INSERT_CHUNK = 256;

/**
 * Splits a list into power-of-two chunks (256, 128, …, 1). The SQL text of a
 * multi-row INSERT or an IN list depends on its length, and the store caches
 * prepared statements by text: with these sizes a handful of statements serve
 * every batch, instead of one new prepare (of thousands of parameters) per batch.
 */
export function* powerOfTwoChunks<T>(items: readonly T[]): Generator<T[]> {
  let i = 0;
  while (i < items.length) {
    let size = INSERT_CHUNK;
    while (size > items.length - i) size >>= 1;
    yield items.slice(i, i + size);
    i += size;
  }
}

/** Orders strings by code unit (rows locked in key order on every tracker). */
export const compareKeys = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Orders [key, value] entries by key (rows locked in key order on every tracker). */
export const byKey = <V>(a: [string, V], b: [string, V]) => compareKeys(a[0], b[0]);

/** Appends to the list under `key`, making it on first use (a Map keeps the keys in arrival order). */
export function appendTo<K, V>(lists: Map<K, V[]>, key: K, value: V): void {
  const list = lists.get(key);
  if (list === undefined) lists.set(key, [value]);
  else list.push(value);
}

/** The columns of a message row as Q.insertMessages takes them. */
const MESSAGE_INSERT_COLUMNS = [
  'stream_id',
  'seq',
  'message_id',
  'sender',
  'client_id',
  'body',
  'created_at',
] as const;
export const INSERT_COLUMNS = MESSAGE_INSERT_COLUMNS.length;

/** One prepared query per chunk size (a power of two, so a handful of them). */
function bySize<R>(build: (n: number) => Prepared<R>): (n: number) => Prepared<R> {
  const cache = new Map<number, Prepared<R>>();
  return (n) => {
    let q = cache.get(n);
    if (q === undefined) {
      q = build(n);
      cache.set(n, q);
    }
    return q;
  };
}
const range = (n: number, f: (i: number) => never) => Array.from({ length: n }, (_, i) => f(i));

/** `n` rows of `columns` for a multi-row INSERT, every cell a parameter: row i, column k is p(i × columns + k). */
function paramRows(p: (i: number) => never, n: number, columns: readonly string[]): never[] {
  return range(n, (i) => Object.fromEntries(columns.map((c, k) => [c, p(i * columns.length + k)])) as never);
}

/**
 * The message path's queries, built and compiled once (store/prepared.ts): at
 * a steady pace each message costs a handful of them, and Kysely building a
 * query costs more than SQLite running it.
 */
export const Q = {
  existing: bySize((n) =>
    prepared((db, p) =>
      db
        .selectFrom('messages')
        .select(['message_id', 'client_id', 'stream_id', 'seq', 'created_at'])
        .where('sender', '=', p(0))
        .where(
          'client_id',
          'in',
          range(n, (i) => p(i + 1)),
        ),
    ),
  ),
  bumpSeq: prepared((db, p) =>
    db
      .updateTable('streams')
      .set({ last_seq: sql<number>`last_seq + ${p(0)}` })
      .where('stream_id', '=', p(1))
      .returning('last_seq'),
  ),
  /** `n` rows of MESSAGE_INSERT_COLUMNS: the parameters are their cells, row after row. */
  insertMessages: bySize((n) =>
    prepared((db, p) => db.insertInto('messages').values(paramRows(p, n, MESSAGE_INSERT_COLUMNS))),
  ),
  cursorsOf: bySize((n) =>
    prepared((db, p) =>
      db
        .selectFrom('cursors')
        .select(['user_id', 'delivered_seq', 'read_seq'])
        .where('stream_id', '=', p(0))
        .where(
          'user_id',
          'in',
          range(n, (i) => p(i + 1)),
        ),
    ),
  ),
  upsertCursors: bySize((n) =>
    prepared((db, p) =>
      db
        .insertInto('cursors')
        .values(paramRows(p, n, ['stream_id', 'user_id', 'delivered_seq', 'read_seq']))
        .onConflict((oc) =>
          oc.columns(['stream_id', 'user_id']).doUpdateSet((eb) => ({
            delivered_seq: eb.ref('excluded.delivered_seq'),
            read_seq: eb.ref('excluded.read_seq'),
          })),
        ),
    ),
  ),
  lastSeqOf: prepared((db, p) => db.selectFrom('streams').select('last_seq').where('stream_id', '=', p(0))),
  sendersBetween: prepared((db, p) =>
    db
      .selectFrom('messages')
      .select(['seq', 'sender'])
      .where('stream_id', '=', p(0))
      .where('seq', '>', p(1))
      .where('seq', '<=', p(2)),
  ),
};
