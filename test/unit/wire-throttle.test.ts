/**
 * The bandwidth limits at the socket (wire/bandwidth.ts, wire/throttle.ts): the wire counters
 * under a real TLS pair, and the buckets' hierarchy and fair sharing under a fake clock, with
 * links whose counters the test moves (a read of `chunk` bytes whenever the throttle says go).
 */
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Bandwidth,
  connectToPeer,
  createIdentity,
  isLocalAddress,
  type LinkThrottle,
  type PeerIdentity,
  tlsServerOptions,
  wireCounters,
} from '../../src/wire/index.js';
import { FakeClock } from '../helpers/fake-clock.js';

const MiB = 1024 * 1024;

/** A stream whose wire counters the test moves, as Node's TCP handle would. */
function fakeStream(): { stream: Duplex; handle: { bytesRead: number; bytesWritten: number } } {
  const handle = { bytesRead: 0, bytesWritten: 0 };
  return { stream: { _handle: handle } as unknown as Duplex, handle };
}

interface SimLink {
  throttle: LinkThrottle | undefined;
  handle: { bytesRead: number; bytesWritten: number };
  nextAt: number;
  moved: number;
}

/**
 * Runs links for `ms` of fake time: each moves `chunk` bytes (read, or written when it gates
 * uploads) whenever its throttle lets it, and waits what the throttle says otherwise.
 */
function run(clock: FakeClock, links: SimLink[], ms: number, chunk = 64 * 1024): void {
  const end = clock.now() + ms;
  for (;;) {
    const next = links.reduce((a, b) => (b.nextAt < a.nextAt ? b : a));
    if (next.nextAt >= end) break;
    clock.advance(next.nextAt - clock.now());
    const wait = next.throttle?.settle() ?? 0;
    if (wait > 0) {
      next.nextAt = clock.now() + wait;
      continue;
    }
    if (next.throttle?.gates === 'up') next.handle.bytesWritten += chunk;
    else next.handle.bytesRead += chunk;
    next.moved += chunk;
    next.nextAt = clock.now() + 1;
  }
  clock.advance(end - clock.now());
}

function link(bw: Bandwidth, options: Parameters<Bandwidth['link']>[1]): SimLink {
  const { stream, handle } = fakeStream();
  return { throttle: bw.link(stream, options), handle, nextAt: 0, moved: 0 };
}

describe('bandwidth limits on the wire counters', () => {
  it('hold one download to its rate within 2 % over 10 s', () => {
    const clock = new FakeClock();
    const bw = new Bandwidth({ clock, download: 4 * MiB });
    const l = link(bw, { groupId: 'g', gates: 'down' });
    run(clock, [l], 10_000);
    expect(l.moved / 10 / (4 * MiB)).toBeGreaterThan(0.98);
    expect(l.moved / 10 / (4 * MiB)).toBeLessThan(1.02);
  });

  it('share a limit fairly between connections, and nest download ⊆ group ⊆ global', () => {
    const clock = new FakeClock();
    const bw = new Bandwidth({ clock, download: 8 * MiB });
    bw.setGroup('films', { downloadBytesPerSec: 4 * MiB });
    const own = bw.downloadBucket(1 * MiB);
    const a = link(bw, { groupId: 'films', gates: 'down' });
    const b = link(bw, { groupId: 'films', gates: 'down' });
    const slow = link(bw, { groupId: 'films', gates: 'down', download: own });
    const other = link(bw, { groupId: 'music', gates: 'down' });
    run(clock, [a, b, slow, other], 10_000);
    const rate = (l: SimLink) => l.moved / 10 / MiB;
    // films: 4 MiB/s, of which the limited download takes its 1 and a, b share the rest.
    expect(rate(a) + rate(b) + rate(slow)).toBeCloseTo(4, 0);
    expect(rate(slow)).toBeCloseTo(1, 0);
    expect(Math.abs(rate(a) - rate(b))).toBeLessThan(0.2);
    // Global 8: music gets what films leaves.
    expect(rate(a) + rate(b) + rate(slow) + rate(other)).toBeCloseTo(8, 0);
  });

  it("say a download's rate: the lowest of its own, its group's, the global and the slot's", () => {
    const clock = new FakeClock();
    const bw = new Bandwidth({ clock });
    expect(bw.downloadRate('films')).toBe(Number.POSITIVE_INFINITY);
    bw.setGlobal({ downloadBytesPerSec: 8 * MiB });
    bw.setGroup('films', { downloadBytesPerSec: 4 * MiB });
    expect(bw.downloadRate('films')).toBe(4 * MiB);
    expect(bw.downloadRate('music')).toBe(8 * MiB);
    expect(bw.downloadRate('films', bw.downloadBucket(1 * MiB))).toBe(1 * MiB);
    expect(bw.downloadRate('films', bw.downloadBucket(0))).toBe(4 * MiB);
    bw.setSlot({ upBytesPerSec: Number.POSITIVE_INFINITY, downBytesPerSec: 0 });
    expect(bw.downloadRate('music')).toBe(0);
  });

  it('apply a change of limit within 1 s, and a paused slot at once', () => {
    const clock = new FakeClock();
    const bw = new Bandwidth({ clock, upload: 1 * MiB });
    const l = link(bw, { groupId: 'g', gates: 'up' });
    run(clock, [l], 2_000);
    const before = l.moved;
    bw.setGlobal({ uploadBytesPerSec: 16 * MiB });
    run(clock, [l], 1_000);
    // The second after the change runs at 16 MiB/s, not 1.
    expect((l.moved - before) / MiB).toBeGreaterThan(14);
    bw.setSlot({ upBytesPerSec: 0, downBytesPerSec: 0 });
    run(clock, [l], 250);
    const paused = l.moved;
    run(clock, [l], 2_000);
    expect(l.moved).toBe(paused);
    bw.setSlot({ upBytesPerSec: Number.POSITIVE_INFINITY, downBytesPerSec: Number.POSITIVE_INFINITY });
    bw.setGlobal({ uploadBytesPerSec: 0 });
    run(clock, [l], 100);
    expect(l.moved).toBeGreaterThan(paused);
  });

  it('charge the other direction without holding it (a seeder reads requests while its download is paused)', () => {
    const clock = new FakeClock();
    const bw = new Bandwidth({ clock });
    bw.setSlot({ upBytesPerSec: Number.POSITIVE_INFINITY, downBytesPerSec: 0 });
    const seeder = link(bw, { groupId: 'g', gates: 'up' });
    seeder.handle.bytesRead += 10 * MiB;
    run(clock, [seeder], 1_000);
    // One chunk every fake millisecond, never held.
    expect(seeder.moved).toBe(1000 * 64 * 1024);
  });

  it('exempt the local network only when asked', () => {
    expect(
      [
        '127.0.0.1',
        '10.1.2.3',
        '172.20.0.1',
        '192.168.1.1',
        '169.254.9.9',
        '::1',
        'fe80::1',
        '::ffff:10.0.0.1',
      ].every(isLocalAddress),
    ).toBe(true);
    expect(['8.8.8.8', '172.32.0.1', '2001:db8::1', undefined].some(isLocalAddress)).toBe(false);
    const clock = new FakeClock();
    const off = new Bandwidth({ clock, upload: MiB });
    const on = new Bandwidth({ clock, upload: MiB, exemptLocal: true });
    const stream = fakeStream().stream;
    expect(off.link(stream, { groupId: 'g', gates: 'up', remoteAddress: '127.0.0.1' })).toBeDefined();
    expect(on.link(stream, { groupId: 'g', gates: 'up', remoteAddress: '127.0.0.1' })).toBeUndefined();
    expect(on.link(stream, { groupId: 'g', gates: 'up', remoteAddress: '203.0.113.5' })).toBeDefined();
  });
});

describe('wireCounters', () => {
  let alice: PeerIdentity;
  let bob: PeerIdentity;
  beforeAll(async () => {
    [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
  });
  let server: tls.Server | undefined;
  afterAll(() => server?.close());

  it('count the TLS records on both sides of a real connection, not the plaintext', async () => {
    const payload = Buffer.alloc(4 * MiB, 7);
    const received = new Promise<{ plain: number; wire: number }>((resolve) => {
      server = tls.createServer(tlsServerOptions(alice), (socket) => {
        const counters = wireCounters(socket);
        let plain = 0;
        socket.on('data', (d: Buffer) => {
          plain += d.length;
        });
        socket.on('end', () => {
          resolve({ plain, wire: counters.read() });
          socket.end();
        });
      });
      server.listen(0, '127.0.0.1');
    });
    await new Promise((r) => server!.once('listening', r));
    const { socket } = await connectToPeer({
      host: '127.0.0.1',
      port: (server!.address() as AddressInfo).port,
      identity: bob,
      expectedPeerId: alice.peerId,
    });
    const counters = wireCounters(socket);
    const before = counters.written();
    await new Promise<void>((resolve) => socket.end(payload, resolve));
    const { plain, wire } = await received;
    socket.destroy();
    expect(plain).toBe(payload.length);
    // 22 bytes of record header and tag per 16 KiB record, plus the handshake: more than the plaintext.
    expect(wire).toBeGreaterThan(plain + (payload.length / 16384) * 22 - 1);
    expect(wire).toBeLessThan(plain * 1.01 + 16384);
    expect(counters.written() - before).toBeGreaterThanOrEqual((payload.length / 16384) * 22 + plain);
  });
});
