import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createManifest } from '../../src/core/manifest.js';
import { signTicket } from '../../src/protocol/tickets.js';
import {
  connectToPeer,
  createIdentity,
  encodeFrame,
  FilePieceSource,
  FramedConnection,
  type PeerIdentity,
  type PieceServer,
  startPieceServer,
} from '../../src/wire/index.js';
import { suiteTempDir } from '../helpers/temp-dir.js';

const dir = suiteTempDir('coterie-fuzz-').path;
let server: PieceServer;
let source: FilePieceSource;
let seeder: PeerIdentity;
let client: PeerIdentity;
let hello: Buffer;

beforeAll(async () => {
  const path = join(dir, 'f');
  await writeFile(path, randomBytes(200_000));
  const { manifest, fileId } = await createManifest(path);
  [seeder, client] = await Promise.all([createIdentity(), createIdentity()]);
  const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA' }] };
  source = await FilePieceSource.open(path, manifest);
  server = await startPieceServer({ identity: seeder, sources: () => source, jwks, host: '127.0.0.1' });
  const ticket = await signTicket(
    { user: 'u', peer: client.peerId, file: fileId, group: 'g', ttlSeconds: 300 },
    { privateKey, kid: 'k1' },
  );
  hello = encodeFrame({ type: 'hello', version: 1, fileId, peerId: client.peerId, ticket });
});

afterAll(async () => {
  await server?.close();
  await source?.close();
});

/** Sends bytes after a valid hello, half-closes, and waits for the server to hang up. */
async function throwAt(bytes: Buffer): Promise<void> {
  const { socket } = await connectToPeer({
    host: '127.0.0.1',
    port: server.port,
    identity: client,
    expectedPeerId: seeder.peerId,
  });
  socket.on('error', () => {});
  socket.resume();
  const closed = new Promise((r) => socket.once('close', r));
  socket.write(Buffer.concat([hello, bytes]));
  socket.end();
  await closed;
}

const validFrames = fc.array(
  fc.oneof(
    fc
      .record({
        piece: fc.nat({ max: 8 }),
        offset: fc.nat({ max: 70_000 }),
        length: fc.integer({ min: 1, max: 70_000 }),
      })
      .map((b) => encodeFrame({ type: 'request', ...b })),
    fc
      .record({
        piece: fc.nat({ max: 8 }),
        offset: fc.nat({ max: 70_000 }),
        length: fc.integer({ min: 1, max: 70_000 }),
      })
      .map((b) => encodeFrame({ type: 'cancel', ...b })),
    fc.constant(encodeFrame({ type: 'keepalive' })),
    fc.nat({ max: 8 }).map((piece) => encodeFrame({ type: 'have', piece })),
  ),
  { maxLength: 20 },
);

describe('piece server under hostile input', () => {
  it('survives random bytes and mutated frames after a valid hello', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 3000 }).map((b) => Buffer.from(b)),
          fc
            .tuple(
              validFrames,
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
            )
            .map(([frames, mutations]) => {
              const bytes = Buffer.concat(frames);
              for (const [at, v] of mutations) if (bytes.length > 0) bytes[at % bytes.length] = v;
              return bytes;
            }),
        ),
        throwAt,
      ),
      { numRuns: 100 },
    );
    // Every hostile connection is gone and the server still serves.
    for (let i = 0; i < 100 && server.stats().connections > 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(server.stats().connections).toBe(0);
    const { socket } = await connectToPeer({
      host: '127.0.0.1',
      port: server.port,
      identity: client,
      expectedPeerId: seeder.peerId,
    });
    const conn = new FramedConnection(socket);
    socket.write(hello);
    const frames = conn[Symbol.asyncIterator]();
    expect((await frames.next()).value).toMatchObject({ type: 'hello' });
    conn.destroy();
  });
});
