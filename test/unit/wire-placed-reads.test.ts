import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { FramedConnection } from '../../src/wire/connection.js';
import { type Frame, MAX_FRAME_LENGTH } from '../../src/wire/frames.js';
import {
  connectToPeer,
  createIdentity,
  type PeerIdentity,
  tlsServerOptions,
} from '../../src/wire/identity.js';
import { PlacedReads } from '../../src/wire/placed-reads.js';

let seeder: PeerIdentity;
let downloader: PeerIdentity;
const cleanups: Array<() => void> = [];

beforeAll(async () => {
  [seeder, downloader] = await Promise.all([createIdentity(), createIdentity()]);
});
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A TLS server that, as soon as a client connects, sends `frames` and ends. */
async function serve(frames: Frame[]): Promise<number> {
  const srv = tls.createServer(tlsServerOptions(seeder), (socket) => {
    const conn = new FramedConnection(socket, { keepaliveIntervalMs: 0 });
    void (async () => {
      for (const f of frames) await conn.send(f);
      await conn.close();
    })().catch(() => conn.destroy());
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => srv.close());
  return (srv.address() as AddressInfo).port;
}

/** A TLS client socket to `port` whose reads are placed (not yet attached to a connection). */
async function connectPlaced(port: number) {
  const reads = new PlacedReads();
  const { socket } = await connectToPeer({
    host: '127.0.0.1',
    port,
    identity: downloader,
    expectedPeerId: seeder.peerId,
    onread: reads.onread,
  });
  cleanups.push(() => socket.destroy());
  return { socket, reads };
}

function pieceFrames(count: number, bytes: number): Frame[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'piece' as const,
    piece: i,
    offset: 0,
    data: randomBytes(bytes),
  }));
}

describe('placed reads over a real TLS socket', () => {
  it('decrypts blocks straight into the buffers the connection allocates, bytes sent before it attached included', async () => {
    const sent: Frame[] = [
      { type: 'hello', version: 1, fileId: 'a'.repeat(64), peerId: seeder.peerId, ticket: '' },
      { type: 'bitfield', bitfield: Bitfield.fromBuffer(Buffer.from([0xff, 0x80]), 9) },
      ...pieceFrames(12, 300_000),
      { type: 'have', piece: 5 },
      ...pieceFrames(4, 7),
    ];
    const { socket, reads } = await connectPlaced(await serve(sent));
    // The seeder talks first: its first frames arrive before the connection exists and are held.
    await sleep(100);
    let dataEvents = 0;
    socket.on('data', () => dataEvents++);
    const arena = new ArrayBuffer(MAX_FRAME_LENGTH * 2);
    const slots: Buffer[] = [];
    const conn = new FramedConnection(
      socket,
      { maxFrameLength: MAX_FRAME_LENGTH, keepaliveIntervalMs: 0 },
      {
        reads,
        allocatePayload: (length) => {
          const slot = Buffer.from(arena, (slots.length % 2) * MAX_FRAME_LENGTH, length);
          slots.push(slot);
          return slot;
        },
      },
    );
    const received: Frame[] = [];
    for await (const f of conn) {
      if (f.type === 'piece') {
        expect(f.data.buffer).toBe(arena);
        // As hex now: the test's two slots are reused as frames arrive (and toEqual on big buffers is slow).
        received.push({ ...f, data: f.data.toString('hex') } as unknown as Frame);
      } else received.push(f);
    }
    const asHex = (f: Frame) => (f.type === 'piece' ? { ...f, data: f.data.toString('hex') } : f);
    expect(received).toEqual(sent.map(asHex));
    expect(dataEvents).toBe(0);
  });

  it('stops reading while the consumer is behind and loses nothing when it catches up', async () => {
    const sent = pieceFrames(48, 200_000);
    const { socket, reads } = await connectPlaced(await serve(sent));
    let started = 0;
    let consumed = 0;
    let mostAhead = 0;
    const conn = new FramedConnection(
      socket,
      { maxFrameLength: MAX_FRAME_LENGTH, keepaliveIntervalMs: 0, maxQueuedFrames: 4 },
      {
        reads,
        allocatePayload: (length) => {
          started++;
          mostAhead = Math.max(mostAhead, started - consumed);
          return Buffer.allocUnsafe(length);
        },
      },
    );
    const received: Buffer[] = [];
    for await (const f of conn) {
      if (f.type === 'piece') received.push(f.data);
      consumed++;
      await sleep(5);
    }
    expect(Buffer.concat(received).equals(Buffer.concat(sent.map((f) => (f as { data: Buffer }).data)))).toBe(
      true,
    );
    // Queued frames (4), the one being received, and what TLS had already decrypted when reading
    // paused: a bounded few, where not pausing runs ahead through most of the 48.
    expect(mostAhead).toBeLessThanOrEqual(10);
  }, 20_000);
});
