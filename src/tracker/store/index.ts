// The public entry of src/tracker/store: the one Store over SQLite or PostgreSQL,
// its schema types and the query helpers the tracker's services build on.
export { idempotencyContext } from './idempotency-context.js';
export { MIGRATIONS } from './migrations.js';
export { databaseNowMs } from './postgres.js';
export { namedStatement, type Prepared, prepared } from './prepared.js';
export type { Database, MessagesTable, StreamsTable } from './schema.js';
export { toNumber } from './schema.js';
export { migrate, type OpenStoreOptions, openStore, type Store, type StoreDialect } from './store.js';
