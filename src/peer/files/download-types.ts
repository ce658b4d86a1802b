import type { Logger } from 'pino';
import type { DownloadView, ShowDownloadsResult } from '../../protocol/control.js';
import type { TransferProgress } from '../../protocol/peer-events.js';
import type { PeerMovedEvent, SessionEvent } from '../../protocol/session.js';
import type { Dial, PeerIdentity } from '../../wire/index.js';
import type { DownloadRequest } from '../control/index.js';
import type { Notice, PeerEvent } from '../notices.js';
import type { PeerStore } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { TrackerSession } from '../tracker/session.js';
import type { RuleWeights } from './download-detail.js';
import type { DownloadLimits } from './download-start.js';
import type { Seeding } from './seeding.js';
import type { Shares } from './shares.js';
import type { TransferCounters } from './transfer-counters.js';

export type { DownloadRequest };

/**
 * The peer's downloads: each one a row of the store (so it survives
 * restarts) driving the download engine; seeders from the tracker's lookup
 * and, while it runs, from the session's seeder events; one with no live
 * seeder waits (state `waiting`) until the session announces one; `--wait`
 * waiters; pause, resume and cancel by the user; pause on shutdown or
 * logout, resume when the tracker answers again.
 */
export interface Downloads {
  start(groupId: string, fileName: string, dest: string, options: DownloadRequest): Promise<DownloadView>;
  /** select_files: widens the selection of the latest download of a folder (restarting it if it ended). */
  select(groupId: string, fileName: string, globs: string[]): Promise<DownloadView>;
  /** pause_download: stops it resumably; it stays paused across restarts until resume_download. */
  pause(download: string): Promise<DownloadView>;
  /** resume_download: a paused, failed or cancelled download goes on (or waits for seeders). */
  resume(download: string): Promise<DownloadView>;
  /** cancel_download: stops it and removes its part and resume files. */
  cancel(download: string): Promise<DownloadView>;
  /** Files deleted from a group: their running downloads there fail, saying so. */
  onDeleted(groupId: string, fileIds: readonly string[]): void;
  /** show_downloads; with a download, its detail too (download-detail.ts). */
  list(download?: string): ShowDownloadsResult;
  /** The running downloads with their peers and piece maps (what `downloadProgress` events carry). */
  transfers(): TransferProgress[];
  /** Files this peer serves the verified pieces of while downloading them (announced as a partial seeder). */
  partialFileIds(): string[];
  /** Files whose seeders the session should report (the running and the waiting downloads). */
  watchedFileIds(): string[];
  onSeederAppeared(e: Extract<SessionEvent, { type: 'seeder_appeared' }>): void;
  /** A seeder's addresses changed (the tracker's `peer_moved`): running downloads linked to it use them now. */
  onPeerMoved(e: PeerMovedEvent): void;
  /** Our public UDP endpoint was learned or moved: running downloads try their relayed seeders directly now. */
  retryDirect(): void;
  resumeAll(): Promise<void>;
  /** Stops every running download resumably (logout, shutdown). */
  pauseAll(): Promise<void>;
  stop(): Promise<void>;
}

export interface DownloadsDeps {
  /** How seeders are dialled (relays included); default: TLS over TCP. */
  dial?: Dial;
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  identity: PeerIdentity;
  seeding: Seeding;
  shares: Pick<Shares, 'isServed' | 'shareDownloaded'>;
  notify: (kind: Notice['kind'], text: string) => void;
  onEvent: (e: PeerEvent) => void;
  log: Logger;
  /** The selection rule's α and β (`coterie peer --alpha --beta`); the scheduler's defaults otherwise. */
  scheduler?: RuleWeights;
  /** The bandwidth limits each download's dial goes through (peer/limits.ts). */
  limits?: DownloadLimits;
  /** Counts the downloads' transfers for the peer's metrics. */
  transfers?: TransferCounters;
}
