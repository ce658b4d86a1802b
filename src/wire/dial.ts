import type { Duplex } from 'node:stream';
import type { RelayEndpoint } from '../protocol/relay.js';
import { connectToPeer, type PeerIdentity } from './identity.js';
import type { PlacedReads } from './placed-reads.js';
import type { LinkThrottle } from './throttle.js';

/** Whom to dial: the peer id the tracker listed and where it said the peer listens. */
export interface DialTarget {
  peerId: string;
  address: { host: string; port: number };
  /** Relays the peer holds a reservation on (its `relay://` addresses): it is behind NAT. */
  relays?: RelayEndpoint[];
  /** Its public UDP endpoint (its `udp://` address): a hole may be punched to it (issue 19). */
  udp?: { host: string; port: number };
  /**
   * Upgrading a relayed link (issue 19): only a path that does not go
   * through a relay will do (TCP or a punched UDP stream); fail rather than
   * open another circuit.
   */
  directOnly?: boolean;
}

/** A byte stream to a peer, and the peer id its transport proved (TLS: the certificate's fingerprint). */
export interface DialedPeer {
  stream: Duplex;
  peerId: string;
  /** The bandwidth limits its reads are held to (Bandwidth.throttledDial). */
  throttle?: LinkThrottle;
  /** The stream goes through a relay: the download tries to upgrade it to a direct path while it runs. */
  relayed?: boolean;
  /** The stream goes over a hole punched through NATs (UDP): pinged, as a relayed one, for a silent drop. */
  punched?: boolean;
}

/**
 * Opens a byte stream to a seeder and says who answered. The piece client
 * refuses a stream whose proved peer id is not `target.peerId`
 * (PEER_MISMATCH). A dial that passes `reads.onread` to its socket lets
 * received blocks land in their slots without a copy; one that ignores it
 * still works (the connection decodes 'data' events). TLS over TCP is the
 * default (createTlsDial); relays and other transports plug in here, and
 * tests pass in-memory pairs.
 */
export type Dial = (target: DialTarget, signal: AbortSignal, reads?: PlacedReads) => Promise<DialedPeer>;

export const DIAL_DEFAULTS = Object.freeze({ timeoutMs: 10_000 });

/**
 * The default dial: TLS 1.3 with our certificate, refusing any seeder whose
 * public-key fingerprint is not the peer id the tracker listed (PEER_MISMATCH).
 * Given `reads`, the socket decrypts straight into the connection's buffers.
 */
export function createTlsDial(
  identity: PeerIdentity,
  options: { plaintext?: boolean; timeoutMs?: number } = {},
): Dial {
  return async (target, signal, reads) => {
    signal.throwIfAborted();
    const { socket, peerId } = await connectToPeer({
      host: target.address.host,
      port: target.address.port,
      identity,
      expectedPeerId: target.peerId,
      plaintext: options.plaintext ?? false,
      timeoutMs: options.timeoutMs ?? DIAL_DEFAULTS.timeoutMs,
      ...(reads === undefined ? {} : { onread: reads.onread }),
    });
    if (signal.aborted) {
      socket.destroy();
      signal.throwIfAborted();
    }
    return { stream: socket, peerId };
  };
}
