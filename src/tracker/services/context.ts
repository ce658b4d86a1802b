import type { EventBus } from '../events/index.js';
import type { Store } from '../store/index.js';

/** What every service needs: the store, the bus and a clock (injectable for tests). */
export interface ServiceDeps {
  store: Store;
  bus: EventBus;
  /** Milliseconds since the epoch. */
  now: () => number;
}
