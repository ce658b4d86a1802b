export { MIGRATIONS } from './migrations.js';
export type { Database } from './schema.js';
export { toNumber } from './schema.js';
export { migrate, type OpenStoreOptions, openStore, type Store, type StoreDialect } from './store.js';
