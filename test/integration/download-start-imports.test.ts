import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// What a process that only downloads loads at start (bench/transfer.ts times such a process
// from its start): every module file costs CPU to resolve, read and compile, and jose (47
// files) and udx-native (a native binding and streamx) are needed only once a ticket is
// signed or checked, or a UDP endpoint opens, and TypeBox (about 220 files, the relay
// frames' schemas) only once a relay is dialled or reserved. Counted in a child Node with a module hook
// that records every file loaded, from dist/ as the bench runs it.

const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
// The hooks run on a thread of their own: each load goes to the main thread over a port, and
// a final round trip on the same port (messages keep their order) says every load has come.
const HOOKS = `let port;
export function initialize(data) {
  port = data.port;
  port.on('message', () => port.postMessage({ flushed: true }));
  port.unref();
}
export async function load(url, context, next) {
  port.postMessage({ url });
  return next(url, context);
}`;

/** The URLs of every module the child loads while running `script` (an ES module body). */
function modulesLoadedBy(script: string): string[] {
  const main = `import { register } from 'node:module';
import { MessageChannel } from 'node:worker_threads';
const { port1, port2 } = new MessageChannel();
const loaded = [];
port1.on('message', (m) => { if (m.url) loaded.push(m.url); });
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}), {
  data: { port: port2 },
  transferList: [port2],
});
${script}
await new Promise((resolve) => {
  port1.on('message', (m) => { if (m.flushed) resolve(); });
  port1.postMessage('flush');
});
port1.close();
process.stdout.write(JSON.stringify(loaded));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', main], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as string[];
}

describe('a downloading process at start', () => {
  it('loads neither jose, udx-native nor TypeBox until a ticket is checked, a UDP endpoint opens or a relay is used', () => {
    const loaded = modulesLoadedBy(
      `await import(${JSON.stringify(`${DIST}peer/files/download/index.js`)});
await import(${JSON.stringify(`${DIST}wire/index.js`)});`,
    );
    // The download and the wire modules did load (the hook sees them).
    expect(loaded.some((u) => u.endsWith('/dist/peer/files/download/engine.js'))).toBe(true);
    expect(loaded.some((u) => u.endsWith('/dist/wire/piece-server.js'))).toBe(true);
    expect(loaded.filter((u) => /\/node_modules\/(jose|udx-native|@sinclair\/typebox)\//.test(u))).toEqual(
      [],
    );
  });
});
