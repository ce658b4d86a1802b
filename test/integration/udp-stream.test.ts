import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { download } from '../../src/peer/files/download/index.js';
import type { HostPort } from '../../src/protocol/addresses.js';
import {
  createIdentity,
  type Dial,
  dialOverUdp,
  serveOverUdp,
  UdpEndpoint,
  type UdpEndpointOptions,
} from '../../src/wire/index.js';
import { randomShare, transferSetup } from '../fixtures/transfer-harness.js';
import { tempDir } from '../helpers/temp-dir.js';
import { codeOf } from '../helpers/wait.js';

// Issue 19, hole punching, part 1: the reliable UDP stream (UDX) carries the same TLS session and
// wire frames as TCP. Two peers on loopback, a real piece server, a real download over it.

const MiB = 1024 * 1024;
const setup = transferSetup();
const { closers } = setup;
let dir: string;
beforeEach(() => {
  dir = tempDir('coterie-udp-stream-').path;
});

/** A UDP endpoint closed after the test. */
async function endpoint(onStream?: UdpEndpointOptions['onStream']): Promise<UdpEndpoint> {
  const e = await UdpEndpoint.open({ host: '127.0.0.1', ...(onStream === undefined ? {} : { onStream }) });
  closers.push(() => e.close());
  return e;
}

/** A dial that reaches every seeder at `at` over `via`, pinned to the listed peer id. */
function udpDial(via: UdpEndpoint, at: HostPort): Dial {
  return (target, signal) =>
    dialOverUdp({ endpoint: via, candidates: () => [at], identity: setup.me, peerId: target.peerId, signal });
}

describe('the UDP stream transport', { timeout: 60_000 }, () => {
  it('downloads a file byte-identical over TLS on a UDX stream', async () => {
    const file = await randomShare(dir, 6 * MiB + 777, 256 * 1024);
    const seeder = await setup.seed(file);
    let accepted = 0;
    const served = await endpoint(
      serveOverUdp(seeder.identity, (stream, peerId) => {
        accepted++;
        expect(peerId).toBe(setup.me.peerId);
        seeder.server.accept(stream, peerId);
      }),
    );
    const mine = await endpoint();
    const o = await setup.options(file, join(dir, 'out.bin'), {
      seeders: [seeder.info],
      dial: udpDial(mine, served.address),
    });
    await download(o).done;
    expect((await readFile(o.dest)).equals(file.data)).toBe(true);
    expect(accepted).toBeGreaterThanOrEqual(1);
    // Every piece went over the UDP stream: the seeder's TCP listener served nothing.
    expect(seeder.server.stats().bytesSent).toBeGreaterThanOrEqual(file.data.length);
  });

  it('refuses a peer whose certificate is not the pinned peer id', async () => {
    const other = await createIdentity();
    const served = await endpoint(serveOverUdp(other, (stream) => stream.destroy()));
    const mine = await endpoint();
    const dial = dialOverUdp({
      endpoint: mine,
      candidates: () => [served.address],
      identity: setup.me,
      peerId: (await createIdentity()).peerId,
    });
    expect(await codeOf(dial)).toBe('PEER_MISMATCH');
  });

  it('gives up within its bound when nobody answers', async () => {
    const silent = await endpoint();
    const mine = await endpoint();
    const started = Date.now();
    const dial = dialOverUdp({
      endpoint: mine,
      candidates: () => [silent.address],
      identity: setup.me,
      peerId: setup.me.peerId,
      timeoutMs: 400,
    });
    expect(await codeOf(dial)).toBe('UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('tells a peer its address as seen from outside (reflect)', async () => {
    const server = await endpoint();
    const mine = await endpoint();
    expect(await mine.reflect(server.address, { timeoutMs: 2_000 })).toEqual(mine.address);
  });
});
