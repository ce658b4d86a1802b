import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { hashPiece } from '../../src/core/piece-hash.js';
import { computeFileId, type Manifest } from '../../src/protocol/manifest.js';
import { signTicket } from '../../src/protocol/tickets.js';
import {
  createIdentity,
  type Frame,
  FramedConnection,
  type PieceServer,
  type PieceSource,
  PROTOCOL_VERSION,
  startPieceServer,
} from '../../src/wire/index.js';
import { duplexPair } from '../helpers/duplex-pair.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { makeCluster } from '../helpers/piece-client.js';
import { until } from '../helpers/wait.js';

// The piece server's own timings (the hello's deadline, a ticket's expiry) driven by a fake clock,
// over an in-memory pair: a real server, a downloader written by hand.

const DATA = Buffer.from('one small piece');
const manifest: Manifest = { version: 1, size: DATA.length, pieceSize: 16 * 1024, pieces: [hashPiece(DATA)] };
const fileId = computeFileId(manifest);
const ME = 'a'.repeat(64);
/** The wall clock tickets are stamped with, moving with the fake clock. */
const T0 = Math.floor(Date.now() / 1000);

const servers: PieceServer[] = [];
const conns: FramedConnection[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serveOnFakeClock() {
  const clock = new FakeClock();
  const cluster = await makeCluster();
  const source: PieceSource = Object.assign(new EventEmitter(), {
    pieceCount: 1,
    pieceSize: manifest.pieceSize,
    pieceLength: (piece: number) => (piece === 0 ? DATA.length : 0),
    bitfield: Bitfield.full(1),
    read: () => Promise.resolve(DATA),
  });
  const server = await startPieceServer({
    identity: await createIdentity(),
    sources: (id) => (id === fileId ? source : undefined),
    jwks: cluster.jwks,
    host: '127.0.0.1',
    plaintext: true, // its listener is unused: the connection comes through accept()
    handshakeTimeoutMs: 1_000,
    // Neither keepalives nor the idle timeout: the timing under test is the only one.
    keepaliveIntervalMs: 0,
    idleTimeoutMs: 0,
    clock,
    nowSeconds: () => T0 + clock.now() / 1000,
  });
  servers.push(server);
  const [mine, theirs] = duplexPair();
  server.accept(theirs, ME);
  const conn = new FramedConnection(mine, { keepaliveIntervalMs: 0, idleTimeoutMs: 0 });
  conns.push(conn);
  const frames: Frame[] = [];
  conn.on('frame', (f) => frames.push(f));
  const ticket = (ttlSeconds: number) =>
    signTicket(
      { user: 'bob', peer: ME, file: fileId, group: 'films', ttlSeconds, nowSeconds: T0 },
      { privateKey: cluster.privateKey, kid: 'k1' },
    );
  const hello = async (ttlSeconds: number) =>
    conn.write({
      type: 'hello',
      version: PROTOCOL_VERSION,
      fileId,
      peerId: ME,
      ticket: await ticket(ttlSeconds),
    });
  /** The connection reject the server closed with, once it did. */
  const closedWith = async () => {
    await conn.done.catch(() => undefined);
    const last = frames.findLast((f) => f.type === 'reject' && f.request === null);
    return last?.type === 'reject' ? { code: last.code, reason: last.reason } : undefined;
  };
  return { clock, conn, frames, hello, closedWith };
}

/** Lets the pair and the server's promises run (no timer: the fake clock stands still). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the piece server on an injected clock', () => {
  it('closes a connection whose ticket expires, at its expiry and not before', async () => {
    const { clock, conn, frames, hello, closedWith } = await serveOnFakeClock();
    await hello(60);
    await until('the seeder accepts', () => frames.some((f) => f.type === 'bitfield'));
    clock.advance(59_999);
    await settle();
    expect(conn.closed).toBe(false);
    clock.advance(1);
    expect(await closedWith()).toEqual({
      code: 'TICKET_EXPIRED',
      reason: 'the ticket expired and was not renewed: ask the tracker for a new one',
    });
  });

  it('closes a connection that says no hello within the handshake timeout', async () => {
    const { clock, conn, closedWith } = await serveOnFakeClock();
    await settle();
    clock.advance(999);
    await settle();
    expect(conn.closed).toBe(false);
    clock.advance(1);
    expect(await closedWith()).toEqual({ code: 'PROTOCOL_ERROR', reason: 'no hello within 1000 ms' });
  });
});
