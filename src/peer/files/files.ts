import type { Logger } from 'pino';
import { formatHostPort } from '../../protocol/addresses.js';
import type { TransferProgress } from '../../protocol/peer-events.js';
import type { PeerMovedEvent, SessionEvent } from '../../protocol/session.js';
import type { Dial, PeerIdentity } from '../../wire/index.js';
import type { FileCommands } from '../control/index.js';
import type { Limits } from '../limits.js';
import type { Notice, PeerEvent } from '../notices.js';
import type { PeerStore } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { TrackerSession } from '../tracker/session.js';
import type { RuleWeights } from './download-detail.js';
import { createDownloads } from './downloads.js';
import { type Seeding, startSeeding } from './seeding.js';
import { createShares } from './shares.js';
import type { TransferCounters } from './transfer-counters.js';

export interface FilesServiceOptions {
  /** How downloads dial seeders (relays included); default: TLS over TCP. */
  dial?: Dial;
  dataDir: string;
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  identity: PeerIdentity;
  host: string;
  port: number;
  advertiseHost?: string;
  /** The bandwidth limits: the piece server's uploads and each download's reads are held to them. */
  limits?: Limits;
  /** The piece assignment rule's α and β (`coterie peer --alpha --beta`). */
  scheduler?: RuleWeights;
  notify: (kind: Notice['kind'], text: string) => void;
  onEvent: (e: PeerEvent) => void;
  log: Logger;
  /** Counts the downloads' transfers for the peer's metrics. */
  transfers?: TransferCounters;
}

/** The file side of the daemon: seeding, shares and downloads, as the daemon and the commands see it. */
export interface FilesService extends FileCommands {
  readonly serving: { host: string; port: number };
  /** The piece server's sources (storage replicas are served through it too). */
  readonly seeding: Seeding;
  /** Whether a file id is served as one of the user's shares. */
  isShared(fileId: string): boolean;
  addresses(): string[];
  seedingFileIds(): string[];
  watchedFileIds(): string[];
  describeFile(fileId: string): string | undefined;
  onTrackerConnected(): void;
  onSessionEvent(e: SessionEvent): void;
  /** Our public UDP endpoint was learned or moved: relayed seeders are tried directly now. */
  retryDirect(): void;
  /** A seeder's addresses changed (the tracker's `peer_moved`). */
  onPeerMoved(e: PeerMovedEvent): void;
  /** The running downloads with their peers and piece maps. */
  transfers(): TransferProgress[];
  pauseAll(): Promise<void>;
  resumeDownloads(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFilesService(options: FilesServiceOptions): Promise<FilesService> {
  const { store, http, session, identity, log, notify, onEvent } = options;
  const seeding = await startSeeding({
    identity,
    host: options.host,
    port: options.port,
    getKeys: () => http.call('clusterKeys'),
    ...(options.limits === undefined ? {} : { bandwidth: options.limits.bandwidth }),
    log,
  });
  const wildcard = options.host === '0.0.0.0' || options.host === '::';
  const serving = {
    host: options.advertiseHost ?? (wildcard ? '127.0.0.1' : options.host),
    port: seeding.port,
  };
  const shares = createShares({ store, http, session, identity, seeding, notify, onEvent, log });
  await shares.restore();
  const downloads = createDownloads({
    ...(options.dial === undefined ? {} : { dial: options.dial }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.transfers === undefined ? {} : { transfers: options.transfers }),
    store,
    http,
    session,
    identity,
    seeding,
    shares,
    notify,
    onEvent,
    log,
    ...(options.scheduler === undefined ? {} : { scheduler: options.scheduler }),
  });

  /** Deleted from a group (or dropped by its retention): its downloads there fail, its shares stop. */
  const filesDeleted = async (groupId: string, fileIds: readonly string[], at = Date.now() + 1) => {
    downloads.onDeleted(groupId, fileIds);
    await shares
      .onDeleted(groupId, fileIds, at)
      .catch((err: unknown) => log.error({ err }, 'dropping deleted shares'));
  };

  return {
    serving,
    seeding,
    isShared: (fileId) => shares.isServed(fileId),
    addresses: () => [formatHostPort(serving.host, serving.port)],
    seedingFileIds: () => [...new Set([...shares.seedingFileIds(), ...downloads.partialFileIds()])],
    watchedFileIds: () => downloads.watchedFileIds(),
    describeFile: (fileId) =>
      store.shares.list().find((s) => s.fileId === fileId)?.fileName ??
      store.downloads.list().find((d) => d.fileId === fileId)?.fileName,
    onTrackerConnected: () => {
      // The cluster keys may be new (first contact, or a rotated key) for the piece server.
      http.call('clusterKeys').then(
        (keys) => seeding.setKeys(keys),
        () => {},
      );
      void downloads.resumeAll().catch((err: unknown) => log.error({ err }, 'resuming downloads'));
    },
    onSessionEvent: (e) => {
      if (e.type === 'seeder_appeared') downloads.onSeederAppeared(e);
      else if (e.type === 'tickets_revoked')
        seeding.revokeTickets({ groupId: e.groupId, userId: e.userId, beforeSeconds: e.before });
      else if (e.type === 'file_deleted') void filesDeleted(e.groupId, e.fileIds, e.at);
    },
    retryDirect: () => downloads.retryDirect(),
    onPeerMoved: (e) => downloads.onPeerMoved(e),
    uploadFile: (path, groupId, io) => shares.upload(path, groupId, io),
    updateFile: (groupId, fileName, path, ifVersion, io) =>
      shares.update(path, groupId, fileName, ifVersion, io),
    downloadFile: (groupId, fileName, dest, opts) => downloads.start(groupId, fileName, dest, opts),
    selectFiles: (groupId, fileName, globs) => downloads.select(groupId, fileName, globs),
    filesDeleted: (groupId, fileIds) => filesDeleted(groupId, fileIds),
    stopShare: (fileName, groupId) => shares.stopShare(fileName, groupId),
    forgetGroup: (groupId) => shares.forgetGroup(groupId),
    changedShares: () => shares.changed(),
    showDownloads: async (download) => downloads.list(download),
    pauseDownload: (download) => downloads.pause(download),
    resumeDownload: (download) => downloads.resume(download),
    cancelDownload: (download) => downloads.cancel(download),
    transfers: () => downloads.transfers(),
    pauseAll: () => downloads.pauseAll(),
    resumeDownloads: () => downloads.resumeAll(),
    async stop() {
      await downloads.stop();
      await seeding.stop();
    },
  };
}
