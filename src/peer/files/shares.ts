import { statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Logger } from 'pino';
import type { StopShareResult, UpdateResult, UploadResult } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { computeFileId, type Manifest } from '../../protocol/manifest.js';
import { isNewFileName } from '../../protocol/names.js';
import type { PeerIdentity } from '../../wire/index.js';
import type { CommandIO } from '../control/index.js';
import { type Notice, type PeerEvent, shareChangedText, shareDeletedText } from '../notices.js';
import { checkSourceFile } from '../paths.js';
import type { DownloadRecord, PeerStore, ShareRecord } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { TrackerSession } from '../tracker/session.js';
import { sendManifest } from './manifest-transfer.js';
import { hashFile, hashFolder, type Seeding } from './seeding.js';
import { precheckUpdate } from './versions.js';

/**
 * What this peer shares: the store's share rows, the piece server's sources
 * for them, the tracker's listing and the session's announcements, kept in
 * step by upload_file, stop_share and leaving a group.
 */
export interface Shares {
  /** Starts serving the shares kept in the store (at daemon start). */
  restore(): Promise<void>;
  /** File ids served from complete local files. */
  seedingFileIds(): string[];
  isServed(fileId: string): boolean;
  /** Shares no longer served because their file changed since it was shared. */
  changed(): ChangedShare[];
  upload(path: string, groupId: string, io: CommandIO): Promise<UploadResult>;
  /** Shares new content as the next version of a name (update_file), and seeds it. */
  update(
    path: string,
    groupId: string,
    fileName: string,
    ifVersion: number | undefined,
    io: CommandIO,
  ): Promise<UpdateResult>;
  /**
   * The tracker's `file_deleted`: stop serving those files of that group at once. `at`: when they
   * were deleted; a share made since (the same bytes shared afresh) is kept.
   */
  onDeleted(groupId: string, fileIds: readonly string[], at: number): Promise<void>;
  /** A finished download becomes a share of its group, seeded from its destination. */
  shareDownloaded(rec: DownloadRecord, manifest: Manifest): Promise<void>;
  stopShare(fileName: string, groupId: string | undefined): Promise<StopShareResult>;
  forgetGroup(groupId: string): Promise<void>;
}

export interface ChangedShare {
  fileId: string;
  fileNames: string[];
  path: string;
  reason: string;
  at: number;
}

export interface SharesDeps {
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  identity: PeerIdentity;
  seeding: Seeding;
  notify: (kind: Notice['kind'], text: string) => void;
  onEvent: (e: PeerEvent) => void;
  log: Logger;
}

export function createShares(deps: SharesDeps): Shares {
  const { store, http, session, identity, seeding, notify, onEvent, log } = deps;
  /** File id → the path it is served from. */
  const served = new Map<string, string>();
  /** File id → why its share stopped being served (until shared again or stopped). */
  const changed = new Map<string, ChangedShare>();

  /**
   * The file under a share changed: no more serving nor announcing it (the
   * seeding side already refuses its requests), and the user is told once.
   */
  const onChanged = (fileId: string, path: string, reason: string): void => {
    if (changed.has(fileId)) return;
    if (served.get(fileId) === path) served.delete(fileId);
    seeding.unserve(fileId);
    void session.unannounce([fileId]).catch(() => {});
    const fileNames = [
      ...new Set(
        store.shares
          .list()
          .filter((s) => s.fileId === fileId)
          .map((s) => s.fileName),
      ),
    ];
    changed.set(fileId, { fileId, fileNames, path, reason, at: Date.now() });
    log.warn({ fileId, path, reason }, 'a shared file changed since it was shared: no longer seeding it');
    for (const name of fileNames) notify('share', shareChangedText(name));
    onEvent({ type: 'shareChanged', fileId, fileNames, path, reason });
  };

  /**
   * Serves a share from its path. `manifest`: the share's, else read from the store (a folder's
   * pages are read only once its folder is found unchanged in kind).
   */
  const serve = async (share: ShareRecord, manifest?: Manifest): Promise<boolean> => {
    const { fileId, path, size, createdAt: sharedAt } = share;
    try {
      const st = statSync(path);
      const stored = manifest === undefined ? store.shares.manifest(share) : undefined;
      const folder = manifest !== undefined ? manifest.files !== undefined : stored?.folder === true;
      if (folder ? !st.isDirectory() : !st.isFile())
        throw new Error(`not a ${folder ? 'folder' : 'file'} any more`);
      // Written after the share was recorded (while the daemon was down, say): not what was hashed.
      // A folder's files are checked one by one as they are read (tree-source.ts).
      if (!folder && (st.size !== size || st.mtimeMs > sharedAt)) {
        onChanged(fileId, path, st.size !== size ? `its size is now ${st.size} bytes` : 'it was modified');
        return false;
      }
      // A folder is served from its pages in peer.db, a few at a time (tree-source.ts): a
      // manifest just hashed is let go once recorded, not held for as long as it is served.
      const source = folder ? (stored ?? store.shares.manifest(share)) : (manifest ?? stored);
      if (source === undefined) throw new Error('its manifest is gone from peer.db');
      changed.delete(fileId);
      await seeding.serveFile(fileId, source, path, {
        onChanged: (reason) => onChanged(fileId, path, reason),
        onReport: (piece, verdict) => {
          // Skipped reports are not logged: a hostile downloader could fill the log with them.
          if (verdict !== 'skipped')
            log.warn({ fileId, path, piece, verdict }, 'a downloader reported a piece corrupt');
          onEvent({ type: 'corruptReported', fileId, piece, verdict });
        },
      });
      served.set(fileId, path);
      return true;
    } catch (err) {
      log.warn(
        { path, fileId, err: (err as Error).message },
        'not seeding a shared file that changed or vanished',
      );
      return false;
    }
  };

  /** Stops serving a file once no share of any group refers to it. */
  const release = async (fileId: string): Promise<void> => {
    if (store.shares.list().some((o) => o.fileId === fileId)) return;
    changed.delete(fileId);
    seeding.unserve(fileId);
    served.delete(fileId);
    await session.unannounce([fileId]).catch(() => {});
  };

  /** Hashes a file to share, reporting progress as `hashing NAME`. */
  const hashShared = async (path: string, fileName: string, size: number, io: CommandIO, folder = false) => {
    const manifest = await (folder ? hashFolder : hashFile)(path, (doneBytes, totalBytes) =>
      io.onProgress?.({ kind: 'hash', label: `hashing ${fileName}`, doneBytes, totalBytes }),
    );
    if (!folder && manifest.size !== size) log.warn({ path }, 'the file changed size while it was hashed');
    return manifest;
  };

  /** Keeps a share of this peer in the store and serves and announces it. */
  const record = async (share: {
    groupId: string;
    fileName: string;
    version: number | null;
    path: string;
    manifest: Manifest;
  }): Promise<void> => {
    const { groupId, fileName, version, path, manifest } = share;
    const fileId = computeFileId(manifest);
    const rec: ShareRecord = {
      groupId,
      fileName,
      fileId,
      version,
      path,
      size: manifest.size,
      createdAt: Date.now(),
    };
    store.shares.put(rec, manifest);
    // Shared again: what changed under the old share no longer matters.
    for (const c of changed.values()) if (c.path === path) changed.delete(c.fileId);
    if (served.get(fileId) !== path) await serve(rec, manifest);
    await session.announce([fileId]).catch(() => {});
  };

  /**
   * The tracker let these files of a group go (deleted, or dropped by its retention): their
   * shares leave the store and, unless another group still has them, the piece server.
   */
  const dropFiles = async (groupId: string, fileIds: readonly string[], at?: number): Promise<void> => {
    // Downloads of these files for that group end, whether or not this peer kept a share of them.
    for (const fileId of fileIds) seeding.dropFile(fileId, groupId);
    const removed = store.shares.removeFiles(groupId, fileIds, at);
    if (removed.length === 0) return;
    for (const fileId of new Set(removed.map((r) => r.fileId))) await release(fileId);
    const fileNames = [...new Set(removed.map((r) => r.fileName))];
    for (const fileName of fileNames) notify('share', shareDeletedText(fileName, groupId));
    onEvent({ type: 'shareDeleted', groupId, fileIds: removed.map((r) => r.fileId), fileNames });
  };

  return {
    async restore() {
      for (const s of store.shares.list()) {
        if (!served.has(s.fileId)) await serve(s);
      }
    },
    seedingFileIds: () => [...served.keys()],
    isServed: (fileId) => served.has(fileId),
    changed: () => [...changed.values()],

    async upload(path, groupId, io) {
      const { size, folder } = checkSourceFile(path, { folders: true });
      const fileName = basename(path);
      if (!isNewFileName(fileName)) {
        throw new CoterieError(
          'PATH_INVALID',
          `the file name ${JSON.stringify(fileName)} cannot be shared: rename it`,
        );
      }
      // Membership first: hashing a large file only to be refused wastes minutes.
      await http.call('listMembers', { params: { groupId } });
      const manifest = await hashShared(path, fileName, size, io, folder);
      const res = await http.call('shareFile', {
        params: { groupId },
        body: {
          name: fileName,
          manifest: await sendManifest(http, groupId, manifest),
          peerId: identity.peerId,
        },
      });
      await record({ groupId, fileName, version: res.version ?? null, path, manifest });
      return { ...uploadResult(groupId, fileName, path, manifest), created: res.created };
    },

    async update(path, groupId, fileName, ifVersion, io) {
      const { size } = checkSourceFile(path);
      // Membership, the name and a compare-and-set or lock that cannot succeed are refused before hashing.
      await precheckUpdate(http, groupId, fileName, ifVersion, store.getSession()?.userId);
      const manifest = await hashShared(path, fileName, size, io);
      const res = await http.call('updateFile', {
        params: { groupId, file: fileName },
        body: {
          manifest: await sendManifest(http, groupId, manifest),
          peerId: identity.peerId,
          ...(ifVersion === undefined ? {} : { ifVersion }),
        },
      });
      await record({ groupId, fileName: res.name, version: res.version, path, manifest });
      if (res.dropped.length > 0) await dropFiles(groupId, res.dropped);
      const { pieceSize: _, ...result } = uploadResult(groupId, res.name, path, manifest);
      return { ...result, version: res.version, created: res.created, dropped: res.dropped };
    },

    onDeleted: (groupId, fileIds, at) => dropFiles(groupId, fileIds, at),

    async shareDownloaded(rec, manifest) {
      // The swarm grows with every member who has the file.
      try {
        const res = await http.call('shareFile', {
          params: { groupId: rec.groupId },
          body: {
            name: rec.fileName,
            manifest: await sendManifest(http, rec.groupId, manifest),
            peerId: identity.peerId,
          },
        });
        await record({
          groupId: rec.groupId,
          fileName: res.name,
          version: res.version ?? null,
          path: rec.dest,
          manifest,
        });
      } catch (err) {
        log.warn({ err: (err as Error).message, fileId: rec.fileId }, 'could not seed a completed download');
      }
    },

    async stopShare(fileName, groupId) {
      const shares = store.shares
        .list()
        .filter((s) => s.fileName === fileName && (groupId === undefined || s.groupId === groupId));
      if (shares.length === 0) {
        throw new CoterieError(
          'NOT_SHARING',
          `you do not share '${fileName}'${groupId === undefined ? '' : ` in group '${groupId}'`}`,
        );
      }
      const stopped: StopShareResult['stopped'] = [];
      for (const s of shares) {
        try {
          await http.call('stopSharing', {
            params: { groupId: s.groupId, file: s.fileId },
            query: { peerId: identity.peerId },
          });
        } catch (err) {
          // Already gone on the tracker is fine; anything else still stops the local seeding.
          if (!(err instanceof CoterieError && err.code === 'NOT_SHARING')) {
            log.warn({ err: (err as Error).message }, 'tracker did not confirm stop_share');
          }
        }
        store.shares.remove(s.fileName, s.groupId);
        stopped.push({ groupId: s.groupId, fileName: s.fileName });
        await release(s.fileId);
      }
      return { stopped };
    },

    async forgetGroup(groupId) {
      for (const s of store.shares.list().filter((x) => x.groupId === groupId)) {
        store.shares.remove(s.fileName, s.groupId);
        await release(s.fileId);
      }
    },
  };
}

function uploadResult(groupId: string, fileName: string, path: string, manifest: Manifest) {
  return {
    groupId,
    fileName,
    fileId: computeFileId(manifest),
    size: manifest.size,
    pieces: manifest.pieces.length,
    pieceSize: manifest.pieceSize,
    path,
    ...(manifest.files === undefined ? {} : { files: manifest.files.length }),
  };
}
