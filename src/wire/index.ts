// The public entry of src/wire: the peer-to-peer protocol.

export { createSelfSignedPem, loadX509, type X509Module } from '../core/x509.js';
export {
  Bandwidth,
  type BandwidthOptions,
  isLocalAddress,
  type RateLimits,
  type SlotRates,
} from './bandwidth.js';
export { type BlockLease, BlockPool, type BlockPoolOptions, type BlockPoolStats } from './block-pool.js';
export { type Clock, type ClockTimer, realClock } from './clock.js';
export {
  type CloseInfo,
  CONNECTION_DEFAULTS,
  FramedConnection,
  type FramedConnectionIo,
  type FramedConnectionOptions,
} from './connection.js';
export { createTlsDial, DIAL_DEFAULTS, type Dial, type DialedPeer, type DialTarget } from './dial.js';
export {
  type BitfieldFrame,
  type BlockRef,
  type CancelFrame,
  type DecodeResult,
  decodeFrame,
  encodeFrame,
  encodeFrameChunks,
  encodePieceFrameInPlace,
  FRAME_HEADER_BYTES,
  FRAME_TYPES,
  type Frame,
  FrameDecoder,
  type FrameType,
  HANDSHAKE_MAX_FRAME_LENGTH,
  type HaveFrame,
  type HelloFrame,
  type KeepaliveFrame,
  MAX_BLOCK_BYTES,
  MAX_FRAME_LENGTH,
  MAX_REASON_BYTES,
  PIECE_FRAME_HEAD_BYTES,
  PIECE_FRAME_PREFIX_BYTES,
  type PieceFrame,
  PROTOCOL_VERSION,
  type RejectFrame,
  type RequestFrame,
  SEEDER_HANDSHAKE_MAX_FRAME_LENGTH,
} from './frames.js';
export {
  type ConnectPeerOptions,
  checkPeerId,
  connectToPeer,
  createIdentity,
  IDENTITY_CERT_FILE,
  IDENTITY_KEY_FILE,
  loadOrCreateIdentity,
  type PeerIdentity,
  type PeerSocket,
  peerIdOfCertificate,
  peerIdOfSocket,
  TLS_CIPHERS,
  tlsClientOptions,
  tlsServerOptions,
} from './identity.js';
export {
  PATH_KEEPALIVE_DEFAULTS,
  PathKeepalive,
  type PathKeepaliveIo,
  type PathKeepaliveOptions,
} from './path-keepalive.js';
export {
  dialPieceClient,
  PieceClient,
  type PieceClientEvents,
  type PieceClientOptions,
  type RejectKind,
} from './piece-client.js';
export {
  PIECE_SERVER_DEFAULTS,
  type PieceServer,
  type PieceServerOptions,
  type PieceServerStats,
  startPieceServer,
  type WireLogger,
} from './piece-server.js';
export {
  FilePieceSource,
  type LentBlock,
  ManifestPieceSource,
  type PartialPieceSource,
  type PieceSource,
  type PieceSourceLookup,
} from './piece-source.js';
export { type OnReadOption, PlacedReads, type ReadSink } from './placed-reads.js';
export { acceptViaRelay, dialViaRelay, RELAY_CLIENT_DEFAULTS, relayHandshake } from './relay-client.js';
export { createReachDial, REACH_DIAL_DEFAULTS, type ReachDialOptions } from './relay-dial.js';
export {
  RELAY_KEEPALIVE_DEFAULTS,
  RelayReservation,
  type RelayReservationOptions,
} from './relay-reservation.js';
export {
  type FileStamp,
  type ReportVerdict,
  SHARE_GUARD_DEFAULTS,
  ShareGuard,
  type ShareGuardOptions,
} from './share-guard.js';
export { type GatedDirection, LinkThrottle, type WireCounters, wireCounters } from './throttle.js';
export { TicketBinding, TicketGuard, type TicketRevocation } from './ticket-guard.js';
export { tlsClientOver, tlsServerOver } from './tls-over.js';
export { dialOverUdp, serveOverUdp } from './udp-dial.js';
export {
  nonce,
  PUNCH_LOW_TTL,
  UDP_ENDPOINT_DEFAULTS,
  UdpEndpoint,
  type UdpEndpointOptions,
} from './udp-endpoint.js';
