/**
 * The peer's side of a relay circuit (protocol/relay.ts): the downloader's
 * `connect` and the reserved seeder's `accept`, each a TLS connection to the
 * relay (its certificate pinned) that, once the relay says `connected`,
 * carries the two peers' own TLS 1.3. The downloader is the TLS client and pins the seeder's peer id; the
 * seeder is the TLS server and learns the downloader's id from its
 * certificate, then serves it like any connection (ticket checked).
 */
import tls from 'node:tls';
import { CoterieError, isCoterieError } from '../protocol/errors.js';
import {
  encodeRelayFrame,
  RELAY_PROTOCOL_VERSION,
  type RelayClientFrame,
  type RelayEndpoint,
  RelayFrameDecoder,
  type RelayServerFrame,
  relayFrameChecks,
} from '../protocol/relay.js';
import { certificateFingerprint } from '../protocol/tracker-url.js';
import type { PeerIdentity } from './identity.js';
import { tlsClientOver, tlsServerOver } from './tls-over.js';

export const RELAY_CLIENT_DEFAULTS = Object.freeze({ timeoutMs: 10_000 });

/** Where a relay frame goes: the protocol version is filled in here. */
type Unversioned<F> = F extends unknown ? Omit<F, 'v'> : never;

/**
 * Opens a TLS connection to a relay and checks its certificate against the
 * pinned fingerprint (RELAY_CERT_CHANGED otherwise, before anything of ours,
 * the token above all, is written), then sends `first` and reads the relay's
 * frames: `onFrame` sees each until it returns true (done), and the TLS socket
 * is handed back with any bytes behind that frame put back. A `refused` frame
 * rejects with its code; so does a close, a timeout (UNAVAILABLE) or an abort.
 */
export async function relayHandshake(
  relay: RelayEndpoint,
  first: Unversioned<RelayClientFrame>,
  onFrame: (frame: RelayServerFrame) => boolean,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<tls.TLSSocket> {
  const decoder = new RelayFrameDecoder<RelayServerFrame>('server', await relayFrameChecks());
  const timeoutMs = options.timeoutMs ?? RELAY_CLIENT_DEFAULTS.timeoutMs;
  const where = `${relay.host}:${relay.port}`;
  return new Promise((resolve, reject) => {
    // No CA vouches for a relay: its fingerprint does (checked on secureConnect), so no name is checked either.
    const socket = tls.connect({
      host: relay.host,
      port: relay.port,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
      minVersion: 'TLSv1.3',
    });
    // A circuit is half-open: the relay passes the other peer's end on as a half-close, and what
    // that end means is for the caller (the peers' TLS inside) to decide. A circuit that ended its
    // own sending when the relay's end arrived made every later write fail: the TLS inside was cut
    // off after the write in flight (64 KiB), and whether it still had bytes to send when this
    // socket read its FIN was a race, lost on Node 24 two runs in five. A reservation is not: the
    // relay's end of it means the relay is gone, and the socket must close so that the peer
    // reserves elsewhere.
    socket.allowHalfOpen = first.t !== 'reserve'; // tls.connect's options lack allowHalfOpen in @types/node
    socket.setNoDelay(true);
    const done = (err?: unknown) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      options.signal?.removeEventListener('abort', onAbort);
      if (err === undefined) return;
      socket.destroy();
      reject(
        isCoterieError(err)
          ? err
          : new CoterieError('UNAVAILABLE', `relay ${where}: ${(err as Error).message}`, { cause: err }),
      );
    };
    const timer = setTimeout(
      () => done(new CoterieError('UNAVAILABLE', `relay ${where} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    timer.unref();
    const onAbort = () => done(options.signal?.reason ?? new CoterieError('UNAVAILABLE', 'aborted'));
    const onError = (err: Error) => done(err);
    const onClose = () => done(new CoterieError('UNAVAILABLE', `relay ${where} closed the connection`));
    const onData = (chunk: Buffer) => {
      try {
        for (const frame of decoder.push(chunk)) {
          if (frame.t === 'refused') throw new CoterieError(frame.code, `relay ${where}: ${frame.message}`);
          if (!onFrame(frame)) continue;
          done();
          // Paused before the bytes behind the frame go back: a flowing socket without a 'data'
          // listener would drop them on the next tick (the peer's TLS hello, when it came in the
          // same read as 'connected'), before the caller wraps the socket. TLSSocket reads what
          // is buffered; other callers resume().
          socket.pause();
          const rest = decoder.rest();
          if (rest.length > 0) socket.unshift(rest);
          resolve(socket);
          return;
        }
      } catch (err) {
        done(err);
      }
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', onError);
    socket.once('close', onClose);
    socket.once('secureConnect', () => {
      const raw = socket.getPeerCertificate()?.raw;
      if (raw === undefined || certificateFingerprint(raw) !== relay.fingerprint) {
        done(
          new CoterieError(
            'RELAY_CERT_CHANGED',
            `relay ${where} shows a certificate that is not sha256 ${relay.fingerprint} (the one the cluster lists): refused`,
          ),
        );
        return;
      }
      socket.on('data', onData);
      socket.write(encodeRelayFrame({ ...first, v: RELAY_PROTOCOL_VERSION } as RelayClientFrame));
    });
  });
}

/**
 * Opens a circuit to `target` through `relay` and runs TLS over it, pinned to
 * `target` (PEER_MISMATCH otherwise). The relay answers RELAY_FORBIDDEN,
 * RELAY_BUSY or UNAVAILABLE (the seeder holds no reservation there).
 */
export async function dialViaRelay(options: {
  relay: RelayEndpoint;
  target: string;
  identity: PeerIdentity;
  token: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}): Promise<{ stream: tls.TLSSocket; peerId: string }> {
  const timeoutMs = options.timeoutMs ?? RELAY_CLIENT_DEFAULTS.timeoutMs;
  const raw = await relayHandshake(
    options.relay,
    { t: 'connect', token: options.token, peerId: options.identity.peerId, target: options.target },
    (f) => f.t === 'connected',
    { timeoutMs, ...(options.signal === undefined ? {} : { signal: options.signal }) },
  );
  return tlsClientOver(raw, options.identity, options.target, timeoutMs, 'relayed');
}

/**
 * The reserved peer takes circuit `circuit` the relay announced: a new
 * connection saying `accept`, then the TLS server side over it. Resolves with
 * the stream and the downloader's peer id its certificate proves.
 */
export async function acceptViaRelay(options: {
  relay: RelayEndpoint;
  circuit: string;
  identity: PeerIdentity;
  token: string;
  timeoutMs?: number;
}): Promise<{ stream: tls.TLSSocket; peerId: string }> {
  const timeoutMs = options.timeoutMs ?? RELAY_CLIENT_DEFAULTS.timeoutMs;
  const raw = await relayHandshake(
    options.relay,
    { t: 'accept', token: options.token, circuit: options.circuit },
    (f) => f.t === 'connected',
    { timeoutMs },
  );
  return tlsServerOver(raw, options.identity, timeoutMs, 'relayed');
}
