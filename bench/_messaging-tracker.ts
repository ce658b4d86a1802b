// A tracker in its own process for bench/messaging.ts, so that the load
// generator and the tracker do not share one event loop. Prints its URL on
// stdout; stops when stdin closes or on SIGTERM.
import { startTracker } from '../src/tracker/index.js';

const dataDir = process.argv[2];
if (dataDir === undefined) throw new Error('usage: _messaging-tracker.ts DATA_DIR');
const tracker = await startTracker({
  dataDir,
  port: 0,
  logLevel: 'warn',
  scryptLogN: 10,
  // The benchmark measures the message path, not the per-user limit.
  messageRatePerSecond: 1_000_000,
  messageBurst: 1_000_000,
  accountCreationsPerAddress: 1_000_000,
  // Long heartbeats: a loaded benchmark must not lose sessions to a late pong.
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 30_000,
});
process.stdout.write(`${tracker.url}\n`);
const stop = () => {
  void tracker.close().then(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
