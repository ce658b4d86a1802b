// A tracker in its own process for bench/messaging.ts, so that the load
// generator and the tracker do not share one event loop. Prints its URL on
// stdout; stops when stdin closes or on SIGTERM.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { startTracker } from '../src/tracker/index.js';
import { installFanoutTrace } from './lib/fanout-trace.js';

// What lay between each group message's send and its last push (bench/lib/fanout-trace.ts).
const trace = installFanoutTrace();

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
// Dev aid (BENCH_PROF_PHASES=DIR in bench/messaging.ts): `profile start` and `profile stop NAME`
// lines on stdin profile one measured phase only, written to DIR/tracker-NAME.cpuprofile. `trace
// start` and `trace` lines start the fan-out's trace and ask for its figures.
const profiler = new Session();
let lines = '';
process.stdin.on('data', (d: Buffer) => {
  lines += d.toString();
  for (let i = lines.indexOf('\n'); i >= 0; i = lines.indexOf('\n')) {
    const [verb, what, name] = lines.slice(0, i).split(' ');
    lines = lines.slice(i + 1);
    // `trace`: the fan-out's figures so far, one line on stdout (bench/messaging.ts reads it).
    if (verb === 'trace' && what === 'start') trace.start();
    else if (verb === 'trace') process.stdout.write(`trace ${JSON.stringify(trace.report())}\n`);
    if (verb !== 'profile') continue;
    if (what === 'start') {
      profiler.connect();
      void profiler.post('Profiler.enable').then(() => profiler.post('Profiler.start'));
    } else if (what === 'stop' && name !== undefined) {
      void profiler.post('Profiler.stop').then(({ profile }) => {
        writeFileSync(
          join(process.env.BENCH_PROF_PHASES ?? '.', `tracker-${name}.cpuprofile`),
          JSON.stringify(profile),
        );
        profiler.disconnect();
      });
    }
  }
});
process.stdin.resume();
process.on('SIGTERM', stop);
