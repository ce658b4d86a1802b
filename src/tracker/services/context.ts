import type { EventBus } from '../events/bus.js';
import type { Store } from '../store/store.js';

/** What every service needs: the store, the bus and a clock (injectable for tests). */
export interface ServiceDeps {
  store: Store;
  bus: EventBus;
  /** Milliseconds since the epoch. */
  now: () => number;
}
