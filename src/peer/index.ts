// The public entry of src/peer: the user's daemon, and everything of ./client.ts.
export * from './client.js';
export { PEER_DEFAULTS, sessionHeartbeat } from './config.js';
export { type PeerDaemon, type PeerDaemonEvents, type PeerDaemonOptions, startPeerDaemon } from './daemon.js';
export type { Notice, PeerEvent } from './notices.js';
export { parseTrackerUrls, TrackerPool, type TrackerPoolOptions } from './tracker/pool.js';
