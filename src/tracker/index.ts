/**
 * The tracker's public entry: start one in process (tests, `coterie demo`,
 * `coterie tracker`), plus the pieces other areas build on.
 */
export { TRACKER_DEFAULTS } from './config.js';
export {
  createLocalEventBus,
  createPgEventBus,
  EVENTS_CHANNEL,
  type EventBus,
  type PgEventBusOptions,
  type TrackerEvent,
  type TrackerEventHandler,
} from './events/index.js';
export { type OpenStoreOptions, openStore, type Store, type StoreDialect } from './store/index.js';
export {
  type RunningTracker,
  startTracker,
  TRACKER_VERSION,
  type TrackerOptions,
  type TrackerTlsOptions,
} from './tracker.js';
