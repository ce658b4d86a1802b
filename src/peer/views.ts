/**
 * What file commands answer: plain JSON, the same for `--json`, the shell
 * and the formatter in cli/format.ts.
 */
export interface PeerContribution {
  peerId: string;
  userId: string | null;
  pieces: number;
  bytes: number;
}

export interface DownloadView {
  id: number;
  groupId: string;
  fileName: string;
  fileId: string;
  dest: string;
  size: number;
  state: 'active' | 'paused' | 'completed' | 'failed';
  doneBytes: number;
  /** Over the last few seconds while active; the average once completed. */
  rateBytesPerSec: number;
  /** Peers connected right now (active), or that contributed (completed). */
  peers: number;
  error: string | null;
  startedAt: number;
  endedAt: number | null;
  /** Who served which share of the pieces (known while the daemon ran the download). */
  contributions?: PeerContribution[];
}

export interface UploadResult {
  groupId: string;
  fileName: string;
  fileId: string;
  size: number;
  pieces: number;
  pieceSize: number;
  path: string;
  /** False when this content was already listed under this name in the group. */
  created: boolean;
}

export interface StopShareResult {
  stopped: { groupId: string; fileName: string }[];
}

export interface ShowDownloadsResult {
  downloads: DownloadView[];
}

/** What send_msg, send_group_msg and publish answer (`--json`: `id` and `state` first). */
export interface SentView {
  id: string;
  state: 'sent';
  streamId: string;
  seq: number;
  to?: string;
  groupId?: string;
  topic?: string;
  /** True when the tracker had stored this send before (a retry). */
  duplicate: boolean;
}

/** A send no tracker answered: kept in the outbox, sent with its client id when one answers. */
export interface PendingSendView {
  id: null;
  state: 'pending';
  clientId: string;
  streamId: string;
  to?: string;
  groupId?: string;
  topic?: string;
}

export type SendAnswer = SentView | PendingSendView;

export interface ShowMessagesResult {
  /** The user the messages were sent to. */
  me: string;
  messages: import('./store/index.js').InboxMessage[];
  /** With --unread: how many unread ones are left after this page. */
  unreadLeft?: number;
}
