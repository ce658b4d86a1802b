/**
 * TLS over a UDX stream (udp-endpoint.ts): the same session, certificates
 * and frames as over TCP, so the piece client and server cannot tell the
 * difference. The dialler pins the peer id it meant to reach.
 */
import type { Duplex } from 'node:stream';
import type { HostPort } from '../protocol/addresses.js';
import type { DialedPeer } from './dial.js';
import type { PeerIdentity } from './identity.js';
import { tlsClientOver, tlsServerOver } from './tls-over.js';
import { UDP_ENDPOINT_DEFAULTS, type UdpEndpoint } from './udp-endpoint.js';

/**
 * Opens a stream to `peerId` at whichever of `candidates()` answers first,
 * and TLS over it (PEER_MISMATCH when another peer answers).
 */
export async function dialOverUdp(options: {
  endpoint: UdpEndpoint;
  candidates: () => HostPort[];
  identity: PeerIdentity;
  peerId: string;
  n?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Punching: the first `open`s die one hop past our router (PUNCH_LOW_TTL). */
  lowTtlFirst?: boolean;
}): Promise<DialedPeer> {
  const timeoutMs = options.timeoutMs ?? UDP_ENDPOINT_DEFAULTS.timeoutMs;
  const { stream } = await options.endpoint.openStream(options.candidates, {
    timeoutMs,
    ...(options.n === undefined ? {} : { n: options.n }),
    ...(options.lowTtlFirst === undefined ? {} : { lowTtlFirst: options.lowTtlFirst }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  return tlsClientOver(stream, options.identity, options.peerId, timeoutMs, 'UDP');
}

/**
 * The endpoint's `onStream` for a peer that serves: TLS server side over
 * each stream, then `accept` (the piece server) with the peer id the
 * dialler's certificate proves. A stream whose TLS fails is dropped.
 */
export function serveOverUdp(
  identity: PeerIdentity,
  accept: (stream: Duplex, peerId: string) => void,
  onError: (err: Error) => void = () => {},
  timeoutMs: number = UDP_ENDPOINT_DEFAULTS.timeoutMs,
): (raw: Duplex) => void {
  return (raw) => {
    tlsServerOver(raw, identity, timeoutMs, 'UDP').then(
      ({ stream, peerId }) => accept(stream, peerId),
      (err: Error) => {
        raw.destroy();
        onError(err);
      },
    );
  };
}
