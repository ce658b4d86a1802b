// A downloader's side of the piece protocol, by hand: for tests that speak to a real piece
// server frame by frame (tickets, renewals, revocations), and the keys of a made-up cluster.
import type { Duplex } from 'node:stream';
import { type CryptoKey, exportJWK, generateKeyPair, type JSONWebKeySet } from 'jose';
import { connectToPeer, type Frame, FramedConnection, type PeerIdentity } from '../../src/wire/index.js';
import { until } from './wait.js';

/** A cluster's ticket key pair, published as kid 'k1'. */
export async function makeCluster(): Promise<{ privateKey: CryptoKey; jwks: JSONWebKeySet }> {
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' };
  return { privateKey: privateKey as CryptoKey, jwks: { keys: [jwk] } };
}

export interface PieceClient {
  conn: FramedConnection;
  /** Every frame received so far. */
  frames: Frame[];
}

/** Connects over TLS as `identity`, pinning the seeder, and says hello with `ticket`. */
export async function helloSeeder(o: {
  port: number;
  identity: PeerIdentity;
  seederPeerId: string;
  fileId: string;
  ticket: string;
}): Promise<PieceClient> {
  const { socket } = await connectToPeer({
    host: '127.0.0.1',
    port: o.port,
    identity: o.identity,
    expectedPeerId: o.seederPeerId,
  });
  return helloOver(socket, o);
}

/** Says hello with `ticket` over a stream already secured to the seeder (a direct socket or a relay circuit). */
export function helloOver(
  stream: Duplex,
  o: { identity: PeerIdentity; fileId: string; ticket: string },
): PieceClient {
  const conn = new FramedConnection(stream, { keepaliveIntervalMs: 0, idleTimeoutMs: 0 });
  const frames: Frame[] = [];
  conn.on('frame', (f) => frames.push(f));
  conn.write({ type: 'hello', version: 1, fileId: o.fileId, peerId: o.identity.peerId, ticket: o.ticket });
  return { conn, frames };
}

/** The pieces a seeder announced with `have`s so far, in order (a spread window, then more). */
export function haves(c: PieceClient): number[] {
  return c.frames.flatMap((f) => (f.type === 'have' ? [f.piece] : []));
}

/** Resolves once the seeder accepted (its bitfield arrived). */
export async function accepted(c: PieceClient): Promise<PieceClient> {
  await until('the seeder accepts', () => c.frames.some((f) => f.type === 'bitfield'));
  return c;
}

/** The code of the connection reject the seeder closed with, once the connection ended. */
export async function closedWith(c: PieceClient): Promise<string | undefined> {
  await c.conn.done.catch(() => undefined);
  const last = c.frames.findLast((f) => f.type === 'reject' && f.request === null);
  return last?.type === 'reject' ? last.code : undefined;
}
