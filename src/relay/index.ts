// The public entry of src/relay: the relay server (issue 19), run by `coterie relay` and inside every tracker.

export { RELAY_DEFAULTS, type RelayLimits, type RelaySettings } from './config.js';
export {
  type RelayLogger,
  type RelayOptions,
  type RelayStats,
  type RunningRelay,
  startRelay,
} from './server.js';
export { whoamiAuthenticator } from './whoami.js';
