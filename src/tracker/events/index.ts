// The public entry of src/tracker/events: the in-process bus, or LISTEN/NOTIFY across a cluster.
export {
  createLocalEventBus,
  type EventBus,
  type Receipt,
  type StorageOrderItem,
  type TrackerEvent,
  type TrackerEventHandler,
} from './bus.js';
export {
  createPgEventBus,
  EVENTS_CHANNEL,
  type PgConnectionSource,
  type PgEventBusOptions,
} from './pg-bus.js';
