// Run by portmap.ts inside a home namespace: makes and removes a port mapping N times with the
// peer's own module (src/peer/port-mapping.ts) and prints how long each took to be made, in ms
// (the library loaded once before, as the daemon does while its piece server starts).
// argv: N, port.
import { pino } from 'pino';
import { createPortMapper, loadPortMappingLibrary } from '../../src/peer/port-mapping.js';

const [n, port] = process.argv.slice(2).map(Number) as [number, number];
const log = pino({ level: 'silent' });
await loadPortMappingLibrary();
const times: number[] = [];
const protocols = new Set<string>();
const errors: string[] = [];
for (let i = 0; i < n; i++) {
  const mapper = createPortMapper({ port, log, leaseSec: 600, onChange: () => {} });
  const t0 = performance.now();
  await mapper.start();
  const view = mapper.view();
  if (view === undefined) errors.push(`attempt ${i}: no mapping`);
  else {
    times.push(performance.now() - t0);
    protocols.add(view.protocol);
  }
  await mapper.stop();
}
process.stdout.write(`${JSON.stringify({ times, protocols: [...protocols], errors })}\n`);
process.exit(0);
