import type { Logger } from 'pino';
import { CoterieError } from '../protocol/errors.js';
import type { SessionEvent } from '../protocol/session.js';
import type { CommandIO } from './commands.js';
import type { PeerIdentityHandle } from './identity.js';
import type { Notice } from './notices.js';
import type { FileCommands } from './services.js';
import type { PeerStore } from './store.js';
import type { TrackerHttpClient } from './tracker/http-client.js';
import type { TrackerSession } from './tracker/session.js';

export interface FilesServiceOptions {
  dataDir: string;
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  identity: PeerIdentityHandle;
  host: string;
  port: number;
  advertiseHost?: string;
  notify: (kind: Notice['kind'], text: string) => void;
  log: Logger;
}

/** Shares (seeding through the piece server) and downloads. */
export interface FilesService extends FileCommands {
  readonly serving: { host: string; port: number };
  addresses(): string[];
  seedingFileIds(): string[];
  watchedFileIds(): string[];
  describeFile(fileId: string): string | undefined;
  onTrackerConnected(): void;
  onSessionEvent(e: SessionEvent): void;
  pauseAll(): Promise<void>;
  resumeDownloads(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFilesService(options: FilesServiceOptions): Promise<FilesService> {
  const { store } = options;
  const serving = { host: options.advertiseHost ?? options.host, port: options.port };
  return {
    serving,
    addresses: () => [],
    seedingFileIds: () => [...new Set(store.listShares().map((s) => s.fileId))],
    watchedFileIds: () => [],
    describeFile: (fileId) => store.listShares().find((s) => s.fileId === fileId)?.fileName,
    onTrackerConnected: () => {},
    onSessionEvent: () => {},
    async uploadFile(_path: string, _groupId: string, _io: CommandIO) {
      throw new CoterieError('UNAVAILABLE', 'file sharing is not built yet');
    },
    async downloadFile() {
      throw new CoterieError('UNAVAILABLE', 'downloads are not built yet');
    },
    async stopShare(fileName, groupId) {
      const removed = store.removeShares(fileName, groupId);
      if (removed.length === 0) {
        throw new CoterieError(
          'NOT_SHARING',
          `you do not share '${fileName}'${groupId === undefined ? '' : ` in group '${groupId}'`}`,
        );
      }
      return { stopped: removed.map((r) => ({ groupId: r.groupId, fileName: r.fileName })) };
    },
    async showDownloads() {
      return { downloads: store.listDownloads() };
    },
    pauseAll: async () => {},
    resumeDownloads: async () => {},
    stop: async () => {},
  };
}
