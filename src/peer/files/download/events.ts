import type { PeerReport } from '../../../core/scheduler.js';
import type { CoterieError } from '../../../protocol/errors.js';
import type { RelayEndpoint } from '../../../protocol/relay.js';

/** A seeder as the tracker lists it. */
export interface SeederInfo {
  /** SHA-256 of the seeder's certificate public key: the TLS connection is pinned to it. */
  peerId: string;
  address: { host: string; port: number };
  /** Relays it holds a reservation on (it is behind NAT): the dial may go through them. */
  relays?: RelayEndpoint[];
  /** Its public UDP endpoint: the dial may punch a hole to it. */
  udp?: { host: string; port: number };
  /** The tracker's score for this peer, 0..1. */
  score: number;
}

/** Where a seeder is, without its score: what the tracker says when it moved. */
export type SeederWhere = Pick<SeederInfo, 'address' | 'relays' | 'udp'>;

export type PeerConnectionState = 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface PeerProgress extends PeerReport {
  connection: PeerConnectionState;
  /** Where the seeder is dialled. */
  address: { host: string; port: number };
  /** Why the last connection ended, if it did. */
  lastError?: string;
}

export interface DownloadProgress {
  fileId: string;
  totalBytes: number;
  /** Bytes of verified pieces (kept ones included). */
  verifiedBytes: number;
  piecesVerified: number;
  pieceCount: number;
  /** Verified bytes per second, averaged over the last seconds. */
  rateBytesPerSec: number;
  /** Seconds left at the current rate; null while the rate is unknown. */
  etaSeconds: number | null;
  elapsedMs: number;
  /** Missing pieces that no connected peer has (a folder's numbered as its share numbers them). */
  unreachablePieces?: number[];
  peers: PeerProgress[];
}

/**
 * A download at one moment: its progress (the last one, once it ended) and its
 * verified pieces, a copy of the bitfield (the piece map of a transfer view).
 */
export interface DownloadSnapshot extends DownloadProgress {
  bitfield: Buffer;
}

/** The seeds' chunk-assignment analysis, for one finished download. */
export interface PieceDistribution {
  /** Pieces fetched in this run (not kept from an earlier one). */
  fetchedPieces: number;
  resumedPieces: number;
  /** Pieces per contributing peer: the fewest, the most and the mean. */
  min: number;
  max: number;
  avg: number;
  peers: Array<{
    peerId: string;
    givenScore: number;
    finalScore: number;
    pieces: number;
    bytes: number;
    corruptPieces: number;
    stalls: number;
    state: PeerReport['state'];
    banReason?: string;
  }>;
  /** Score (rounded to 0.05) against the pieces its peers served. */
  byScore: Array<{ score: number; peers: number; pieces: number }>;
}

export interface DownloadResult {
  fileId: string;
  dest: string;
  bytes: number;
  durationMs: number;
  distribution: PieceDistribution;
  /** Bytes this run wrote past the page cache (O_DIRECT); 0 where the file system refuses it. */
  directBytes: number;
}

export type DownloadEvent =
  | { type: 'started'; fileId: string; totalBytes: number; pieceCount: number; resumedPieces: number }
  | { type: 'peerConnected'; peerId: string }
  | { type: 'peerDisconnected'; peerId: string; reason: string }
  | { type: 'peerStalled'; peerId: string }
  /** A piece from this seeder failed its hash: it is not asked for that piece again; `strikes` so far. */
  | { type: 'peerStruck'; peerId: string; piece: number; strikes: number }
  /** A connection's ticket was renewed over it before it expired. */
  | { type: 'ticketRenewed'; peerId: string }
  | { type: 'peerBanned'; peerId: string; reason: string }
  /** The tracker told of the seeder's new addresses (`peer_moved`): its link uses them from now on. */
  | { type: 'peerMoved'; peerId: string }
  /** A relayed seeder is now reached directly (TCP or a punched UDP stream); the relayed connection drains. */
  | { type: 'peerUpgraded'; peerId: string }
  /** An attempt to reach a relayed seeder directly failed: the relay keeps carrying it (another try later). */
  | { type: 'peerUpgradeFailed'; peerId: string; reason: string }
  | { type: 'pieceVerified'; piece: number; peerId: string }
  | { type: 'progress'; progress: DownloadProgress }
  | { type: 'completed'; result: DownloadResult }
  | { type: 'failed'; error: CoterieError };
