// Run by relay.ts inside a namespace: opens N circuits to a reserved seeder through a relay, one
// after another, and prints each one's connect time (relay handshake + TLS end to end), in ms.
// argv: tracker URL (with #sha256=), relay host:port, target peer id, N. The relay's certificate
// fingerprint comes from the tracker's GET /v1/cluster, as peers learn it.
import { parseRelayEndpoint } from '../../src/protocol/relay.js';
import { createIdentity, dialViaRelay } from '../../src/wire/index.js';
import { call, userToken } from '../lib/http.js';

const [tracker, relay, target, n] = process.argv.slice(2) as [string, string, string, string];
const token = await userToken(tracker, `probe${process.pid}`);
const { relays } = await call<{ relays: string[] }>(tracker, 'GET', '/v1/cluster');
const listed = relays.find((r) => r.startsWith(`${relay}#`));
if (listed === undefined) throw new Error(`relay ${relay} is not among the cluster's ${relays.join(' ')}`);
const identity = await createIdentity();
const times: number[] = [];
const errors: string[] = [];
for (let i = 0; i < Number(n); i++) {
  const t0 = performance.now();
  try {
    const { stream } = await dialViaRelay({ relay: parseRelayEndpoint(listed)!, target, identity, token });
    times.push(performance.now() - t0);
    stream.destroy();
  } catch (err) {
    errors.push(`${(err as Error).message} after ${Math.round(performance.now() - t0)} ms`);
  }
}
process.stdout.write(`${JSON.stringify({ times, errors })}\n`);
