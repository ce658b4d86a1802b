import type net from 'node:net';
import tls from 'node:tls';
import { CoterieError } from '../protocol/errors.js';
import { encodeRelayFrame, refusal } from '../protocol/relay.js';

/** A TLS record of type handshake starts with this byte; a protocol 1 client's frame starts with its length. */
const TLS_HANDSHAKE_RECORD = 0x16;

/**
 * The relay's TLS in front of its frames (protocol 2): waits for the first
 * byte of an accepted TCP connection and, when it opens a TLS handshake, runs
 * the server side with the relay's certificate and calls `secured` with the
 * TLS socket once the handshake is done. Anything else (a protocol 1 client,
 * which has just sent its token in clear) gets a plain `refused` frame saying
 * so, and the connection is closed: a clear refusal, not a hang. A client
 * that sends nothing, or stalls its handshake, is cut after `timeoutMs`.
 */
export function acceptTls(
  raw: net.Socket,
  context: tls.SecureContext,
  timeoutMs: number,
  secured: (socket: tls.TLSSocket) => void,
  refused: (err: CoterieError) => void,
): void {
  const timer = setTimeout(() => raw.destroy(), timeoutMs);
  timer.unref();
  raw.once('data', (first: Buffer) => {
    raw.pause();
    if (first[0] !== TLS_HANDSHAKE_RECORD) {
      clearTimeout(timer);
      const err = new CoterieError(
        'PROTOCOL_ERROR',
        'this relay speaks relay protocol 2, TLS only: update coterie (and log in again: a plain connection showed the token)',
      );
      refused(err);
      raw.end(encodeRelayFrame(refusal(err.code, err.message)));
      setTimeout(() => raw.destroy(), 1000).unref();
      return;
    }
    raw.unshift(first);
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: context, minVersion: 'TLSv1.3' });
    socket.on('error', () => raw.destroy());
    socket.once('secure', () => {
      clearTimeout(timer);
      secured(socket);
    });
  });
}
