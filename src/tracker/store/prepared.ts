import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';
import type { Database } from './schema.js';

/**
 * A query built and compiled by Kysely once, then run with new parameter
 * values: on hot routes, building a query (immutable nodes, a compiler pass)
 * cost more than running it. Each dialect compiles its own SQL, so this stays
 * portable. `build` receives `param(i)`, a placeholder for the i-th argument,
 * to use wherever a value goes.
 */
export interface Prepared<R> {
  execute(db: Kysely<Database>, args: readonly unknown[]): Promise<QueryResult<R>>;
}

// Placeholders are strings no caller can produce (NUL-delimited), so they are told apart from constants.
const placeholder = (i: number) => `\u0000coterie-param-${i}\u0000`;

export function prepared<R>(
  build: (db: Kysely<Database>, param: (i: number) => never) => Compilable<R>,
): Prepared<R> {
  let compiled: { query: CompiledQuery<R>; slots: (number | { value: unknown })[] } | undefined;
  const compile = (db: Kysely<Database>) => {
    const query = build(db, (i) => placeholder(i) as never).compile();
    const slots = query.parameters.map((p) => {
      // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL delimits placeholders so no real value can collide
      const m = typeof p === 'string' ? /^\u0000coterie-param-(\d+)\u0000$/.exec(p) : null;
      return m ? Number(m[1]) : { value: p };
    });
    return { query, slots };
  };
  return {
    execute(db, args) {
      compiled ??= compile(db);
      const { query, slots } = compiled;
      const parameters = slots.map((s) => (typeof s === 'number' ? args[s] : s.value));
      return db.executeQuery<R>({ ...query, parameters });
    },
  };
}

/** SQL texts that run as named prepared statements on PostgreSQL, with their names. */
const named = new Map<string, string>();

/**
 * Marks a hot SQL text to run as a named prepared statement on PostgreSQL: each connection parses
 * and analyses it once instead of at every run (PostgreSQL may still plan each run: it keeps custom
 * plans where they look cheaper). Returns the text, for use as a constant. SQLite caches its
 * statements anyway.
 */
export function namedStatement(text: string): string {
  if (!named.has(text)) named.set(text, `coterie_${named.size + 1}`);
  return text;
}

/** The statement name of a text marked by `namedStatement`, if it is one. */
export const statementName = (text: string): string | undefined => named.get(text);
