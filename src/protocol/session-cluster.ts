/**
 * The session messages about where things are (issues 19 and 21), part of the
 * session protocol of session.ts: the tracker's dial-back verdict on a peer
 * (in `welcome` and after an `addresses` update) and the cluster's trackers
 * (with the fingerprints peers pin) and relays, and the tracker's request that
 * a session move to another tracker of the cluster (issue 22's rebalancing).
 */
import { type Static, Type } from '@sinclair/typebox';
import { MAX_PEER_ADDRESSES, PeerAddress } from './api.js';
import { HEX64_PATTERN } from './names.js';

/**
 * What the tracker's dial-back found (issue 19): `direct` when a TLS
 * handshake at one of the peer's advertised addresses (or at the source
 * address the tracker sees, with an advertised port) proved the peer id, with
 * that address; `nat` when none did (the peer should keep a relay reservation).
 */
export const Reachability = Type.Object({
  reachable: Type.Union([Type.Literal('direct'), Type.Literal('nat')]),
  address: Type.Optional(Type.String({ maxLength: 300 })),
});
export type Reachability = Static<typeof Reachability>;

/** After an `addresses` update: the dial-back's new verdict (issue 19). */
export const ReachabilityEvent = Type.Object({
  type: Type.Literal('reachability'),
  ...Reachability.properties,
  at: Type.Integer(),
});
export type ReachabilityEvent = Static<typeof ReachabilityEvent>;

/**
 * To every session: the live trackers changed (one joined or left); also sent right after `welcome`.
 * `relays`: where the cluster's relays listen and what they pin (`host:port#sha256=…`), each tracker's own and the standalone ones.
 */
export const ClusterEvent = Type.Object({
  type: Type.Literal('cluster'),
  trackers: Type.Array(
    Type.Object({
      trackerId: Type.String(),
      url: Type.String(),
      fingerprint: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
      sessions: Type.Integer(),
      requestsPerSecond: Type.Number(),
    }),
  ),
  relays: Type.Optional(Type.Array(Type.String({ maxLength: 300 }), { maxItems: 64 })),
  at: Type.Integer(),
});
export type ClusterEvent = Static<typeof ClusterEvent>;

/**
 * To a session of a tracker far above the cluster's mean load (issue 22): move to the tracker at
 * `url`, one the cluster lists. The peer connects there first and closes this session once
 * welcomed, so its presence moves with no gap (the new hello replaces the old row).
 */
export const MoveEvent = Type.Object({
  type: Type.Literal('move'),
  url: Type.String({ maxLength: 300 }),
  at: Type.Integer(),
});
export type MoveEvent = Static<typeof MoveEvent>;

/**
 * To the sessions watching a file that peer `peerId` seeds: its addresses changed (a new
 * listening port, a port mapping made, moved or lost, the dial-back's verdict, a new public UDP
 * endpoint, a relay reservation). One per peer, however many files it seeds; `addresses` are
 * the ones its session sent, as the tracker checked them. A downloader with a link to that peer
 * tries the new addresses now instead of at its next listing (issue 19).
 */
export const PeerMovedEvent = Type.Object({
  type: Type.Literal('peer_moved'),
  peerId: Type.String({ pattern: HEX64_PATTERN, minLength: 64, maxLength: 64 }),
  addresses: Type.Array(PeerAddress, { maxItems: MAX_PEER_ADDRESSES }),
  at: Type.Integer(),
});
export type PeerMovedEvent = Static<typeof PeerMovedEvent>;
