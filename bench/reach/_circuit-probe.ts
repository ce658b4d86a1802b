// Run by relay.ts inside a namespace: opens N circuits to a reserved seeder through a relay, one
// after another, and prints each one's connect time (relay handshake + TLS end to end), in ms.
// argv: tracker URL (with #sha256=), relay host:port, target peer id, N.
import { parseHostPort } from '../../src/protocol/addresses.js';
import { createIdentity, dialViaRelay } from '../../src/wire/index.js';
import { userToken } from '../lib/http.js';

const [tracker, relay, target, n] = process.argv.slice(2) as [string, string, string, string];
const token = await userToken(tracker, `probe${process.pid}`);
const identity = await createIdentity();
const times: number[] = [];
const errors: string[] = [];
for (let i = 0; i < Number(n); i++) {
  const t0 = performance.now();
  try {
    const { stream } = await dialViaRelay({ relay: parseHostPort(relay)!, target, identity, token });
    times.push(performance.now() - t0);
    stream.destroy();
  } catch (err) {
    errors.push(`${(err as Error).message} after ${Math.round(performance.now() - t0)} ms`);
  }
}
process.stdout.write(`${JSON.stringify({ times, errors })}\n`);
