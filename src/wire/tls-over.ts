/**
 * TLS 1.3 between two peers over a byte stream that is not our own TCP
 * connection: a relay circuit, a UDX stream over a punched UDP path. The
 * dialler is the TLS client and pins the peer id it meant to reach; the
 * acceptor is the TLS server and learns the dialler's id from its
 * certificate, then serves it like any connection (ticket checked).
 */
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { CoterieError } from '../protocol/errors.js';
import {
  checkPeerId,
  type PeerIdentity,
  peerIdOfSocket,
  tlsClientOptions,
  tlsServerOptions,
} from './identity.js';

/** Waits for TLS on `socket` to finish (or fail, or time out: UNAVAILABLE). */
function secured(
  socket: tls.TLSSocket,
  event: 'secure' | 'secureConnect',
  timeoutMs: number,
  what: string,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new CoterieError('UNAVAILABLE', `${what} TLS failed: ${err.message}`, { cause: err }));
    };
    socket.once('error', fail);
    socket.once(event, () => {
      clearTimeout(timer);
      socket.off('error', fail);
      try {
        // Read now: Node stops showing the peer's certificate once TLS 1.3 tickets arrive (identity.ts).
        peerIdOfSocket(socket);
      } catch (err) {
        fail(err as Error);
        return;
      }
      resolve();
    });
  });
}

/** The client side over `raw`, pinned to `expectedPeerId` (PEER_MISMATCH otherwise). */
export async function tlsClientOver(
  raw: Duplex,
  identity: PeerIdentity,
  expectedPeerId: string,
  timeoutMs: number,
  what: string,
): Promise<{ stream: tls.TLSSocket; peerId: string }> {
  const socket = tls.connect({ socket: raw, ...tlsClientOptions(identity) });
  await secured(socket, 'secureConnect', timeoutMs, what);
  try {
    return { stream: socket, peerId: checkPeerId(socket, expectedPeerId) };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}

/** The server side over `raw`: resolves with the stream and the peer id the client's certificate proves. */
export async function tlsServerOver(
  raw: Duplex,
  identity: PeerIdentity,
  timeoutMs: number,
  what: string,
): Promise<{ stream: tls.TLSSocket; peerId: string }> {
  const socket = new tls.TLSSocket(raw, { isServer: true, ...tlsServerOptions(identity) });
  await secured(socket, 'secure', timeoutMs, what);
  try {
    return { stream: socket, peerId: peerIdOfSocket(socket) };
  } catch (err) {
    socket.destroy();
    throw err;
  }
}
