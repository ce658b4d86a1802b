import type { StoredMessage } from './api.js';
import type { DownloadFields, DownloadView, SentMessage } from './control.js';
import type { SessionEvent } from './session.js';

/**
 * The peer daemon's typed event stream (after nats.js status()): what tests, the
 * shell, the CLI and the web page follow without parsing text. Recoverable
 * trouble (a tracker lost, a peer banned) is an event and a log line, never
 * an error. Here in protocol/ so that any surface can read it without loading
 * the daemon.
 */
export type PeerEvent =
  | { type: 'trackerConnected'; url: string }
  | { type: 'trackerLost'; url: string; reason: string }
  | { type: 'trackerFailover'; from: string; to: string }
  | { type: 'sessionEnded'; reason: string }
  | { type: 'downloadCompleted'; id: number; fileName: string; dest: string }
  | { type: 'downloadFailed'; id: number; fileName: string; reason: string }
  /**
   * A running download's progress: its seeders and its verified pieces. At most
   * DOWNLOAD_PROGRESS_PER_SEC a second per download, and once more as it ends.
   */
  | { type: 'downloadProgress'; progress: TransferProgress }
  | { type: 'peerBanned'; downloadId: number; peerId: string; reason: string }
  /** A shared file changed since it was hashed: it is no longer served nor announced. */
  | { type: 'shareChanged'; fileId: string; fileNames: string[]; path: string; reason: string }
  /** The tracker deleted these files of a group (or its retention dropped them): no longer served there. */
  | { type: 'shareDeleted'; groupId: string; fileIds: string[]; fileNames: string[] }
  /** A downloader reported a piece of a share corrupt, and what re-checking the file found. */
  | { type: 'corruptReported'; fileId: string; piece: number; verdict: 'intact' | 'changed' | 'skipped' }
  | { type: 'trackerEvent'; event: SessionEvent }
  /** A message arrived and was stored (once per message id). */
  | { type: 'messageReceived'; message: StoredMessage }
  /** This user sent a direct or group message (from any surface): pending, then again once sent. */
  | { type: 'messageSent'; message: SentMessage }
  /** A reader's peer acknowledged (delivered) or showed (read) messages this user sent. */
  | { type: 'receipt'; streamId: string; reader: string; delivered: number; read: number };

/** How often a download's progress event may come: the engine reports every 250 ms. */
export const DOWNLOAD_PROGRESS_PER_SEC = 4;

/** One seeder of a running download, as the transfer view shows it. */
export interface TransferPeer {
  peerId: string;
  /** Its user, as the tracker named it (null for a seeder it did not name). */
  userId: string | null;
  /** Where it was dialled: host:port. */
  address: string;
  connection: 'connecting' | 'ready' | 'reconnecting' | 'closed';
  /** The scheduler's view of it; `banned` comes with banReason. */
  state: 'active' | 'stalled' | 'busy' | 'banned' | 'gone';
  /** The score the scheduler uses now (the tracker's, blended with what it measured), 0..1. */
  score: number;
  rateBytesPerSec: number;
  /** Pieces it served that verified, and their bytes. */
  piecesVerified: number;
  bytes: number;
  banReason?: string;
  /** Why its last connection ended, if it did. */
  lastError?: string;
}

/** A running download as the transfer view shows it: totals, its peers and its piece map. */
export interface TransferProgress
  extends Pick<DownloadFields, 'id' | 'groupId' | 'fileName' | 'fileId' | 'dest' | 'size' | 'doneBytes'> {
  rateBytesPerSec: number;
  /** Seconds left at the current rate; null while the rate is unknown. */
  etaSeconds: number | null;
  pieceCount: number;
  piecesVerified: number;
  /** The verified pieces: a bitfield in the wire's bit order (piece i is bit 0x80 >> i % 8 of byte i >> 3), base64. */
  bitfield: string;
  peers: TransferPeer[];
}

/** Whether piece `i` is set in a TransferProgress's decoded bitfield. */
export function hasPiece(bits: Uint8Array, i: number): boolean {
  return ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;
}

/**
 * The transfers table with a download's progress in its row (percent, rate, peers connected), as
 * the web page and `show_downloads --watch` keep it between two pushes of the whole table.
 */
export function withProgress(downloads: readonly DownloadView[], p: TransferProgress): DownloadView[] {
  const peers = p.peers.filter((x) => x.connection === 'ready').length;
  return downloads.map((d) =>
    d.id === p.id && d.state === 'active'
      ? { ...d, doneBytes: p.doneBytes, rateBytesPerSec: p.rateBytesPerSec, peers }
      : d,
  );
}
