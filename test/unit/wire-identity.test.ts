import { stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tls from 'node:tls';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  checkPeerId,
  connectToPeer,
  createIdentity,
  IDENTITY_KEY_FILE,
  loadOrCreateIdentity,
  type PeerIdentity,
  peerIdOfSocket,
  tlsServerOptions,
} from '../../src/wire/identity.js';
import { suiteTempDir } from '../helpers/temp-dir.js';

const dir = suiteTempDir('coterie-identity-').path;
let alice: PeerIdentity;
let bob: PeerIdentity;

beforeAll(async () => {
  [alice, bob] = await Promise.all([createIdentity(), createIdentity()]);
});

/** A TLS server for `identity` on loopback that records the client's peer id. */
async function server(identity: PeerIdentity) {
  const seen: string[] = [];
  const sockets = new Set<tls.TLSSocket>();
  const srv = tls.createServer(tlsServerOptions(identity), (socket) => {
    sockets.add(socket);
    seen.push(peerIdOfSocket(socket));
    socket.end('ok');
  });
  srv.on('tlsClientError', () => {});
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  const close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      srv.close(() => r());
    });
  return { port, seen, close };
}

describe('peer identity', () => {
  it('is persisted with a private key file of mode 0600 and reloaded unchanged', async () => {
    const sub = join(dir, 'persist');
    const first = await loadOrCreateIdentity(sub);
    expect(first.created).toBe(true);
    expect(first.peerId).toMatch(/^[0-9a-f]{64}$/);
    expect((await stat(join(sub, IDENTITY_KEY_FILE))).mode & 0o777).toBe(0o600);
    const again = await loadOrCreateIdentity(sub);
    expect(again.created).toBe(false);
    expect(again.peerId).toBe(first.peerId);
  });

  it('refuses half an identity or a key that does not match', async () => {
    const sub = join(dir, 'broken');
    await loadOrCreateIdentity(sub);
    await writeFile(join(sub, IDENTITY_KEY_FILE), bob.keyPem);
    await expect(loadOrCreateIdentity(sub)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await unlink(join(sub, IDENTITY_KEY_FILE));
    await expect(loadOrCreateIdentity(sub)).rejects.toMatchObject({ code: 'PATH_INVALID' });
  });

  it('lets two peers see each other’s ids over TLS 1.3', async () => {
    const srv = await server(alice);
    try {
      const { socket, peerId } = await connectToPeer({
        host: '127.0.0.1',
        port: srv.port,
        identity: bob,
        expectedPeerId: alice.peerId,
      });
      expect(peerId).toBe(alice.peerId);
      expect((socket as tls.TLSSocket).getProtocol()).toBe('TLSv1.3');
      // AES-128-GCM, not OpenSSL's default AES-256-GCM: the cheaper suite per byte with AES-NI
      // (docs/performance.md), still one of TLS 1.3's mandatory suites.
      expect((socket as tls.TLSSocket).getCipher().standardName).toBe('TLS_AES_128_GCM_SHA256');
      expect(checkPeerId(socket as tls.TLSSocket, alice.peerId)).toBe(alice.peerId);
      socket.resume();
      await new Promise((r) => socket.once('close', r));
      expect(srv.seen).toEqual([bob.peerId]);
    } finally {
      await srv.close();
    }
  });

  it('refuses a server whose key is not the expected peer id', async () => {
    const srv = await server(alice);
    try {
      await expect(
        connectToPeer({ host: '127.0.0.1', port: srv.port, identity: bob, expectedPeerId: bob.peerId }),
      ).rejects.toMatchObject({ code: 'PEER_MISMATCH' });
    } finally {
      await srv.close();
    }
  });

  it('reports an unreachable peer as UNAVAILABLE', async () => {
    const srv = await server(alice);
    await srv.close();
    await expect(
      connectToPeer({ host: '127.0.0.1', port: srv.port, identity: bob, expectedPeerId: alice.peerId }),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
