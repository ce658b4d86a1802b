import type { DownloadView } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import { PEER_DEFAULTS } from '../config.js';
import { rememberDestDir, resolveDestination } from '../paths.js';
import type { DownloadRecord } from '../store/index.js';
import type { DownloadHandle, DownloadProgress, TreeDownloadHandle } from './download/index.js';
import { findDownload, removePartFiles } from './download-control.js';
import { analysisFor, analysisOf, rememberAnalysis, runningDetail } from './download-detail.js';
import { askOf, rememberAsk } from './download-options.js';
import {
  appearedSeeder,
  hasLiveSeeder,
  listedSeeders,
  movedSeeder,
  reportPeers,
  withSeederNames,
} from './download-seeders.js';
import { checkedManifest, startEngine } from './download-start.js';
import type { Downloads, DownloadsDeps } from './download-types.js';
import { downloadView, type EndedDownload } from './download-view.js';
import { createWaiters } from './download-waiters.js';
import { type FullFileDetail, getFileDetail } from './manifest-transfer.js';
import { downloadToWiden, initialSelection, rememberSelection, widenSelection } from './selection.js';
import { transferOf } from './transfer-view.js';

export type { DownloadRequest, Downloads, DownloadsDeps } from './download-types.js';

/** How often a running download's progress is written to the store (it is also written at its end). */
const PERSIST_PROGRESS_MS = PEER_DEFAULTS.downloadProgressSaveIntervalMs;

interface Running {
  id: number;
  handle: DownloadHandle;
  fileId: string;
  /** peer id → user id, from the tracker's seeder lists and events. */
  users: Map<string, string>;
  progress: DownloadProgress | undefined;
  persistedAt: number;
  /** Set when it is stopped on purpose (logout, shutdown, pause, cancel): not a failure. */
  pausing: boolean;
  /** A folder's download, which select_files widens. */
  tree: TreeDownloadHandle | undefined;
}

export function createDownloads(deps: DownloadsDeps): Downloads {
  const { store, http, session, identity, seeding, shares, notify, onEvent, log } = deps;
  const running = new Map<number, Running>();
  const results = new Map<number, EndedDownload>();
  /** Downloads to resume once the tracker answers. */
  const waiting = new Set<number>();
  let stopped = false;

  const view = (rec: DownloadRecord): DownloadView =>
    downloadView(rec, running.get(rec.id), results.get(rec.id));
  const waiters = createWaiters(store, view);

  /** A download's pieces are no longer served: the tracker stops listing this peer for the file. */
  const stopServingPartial = (fileId: string): void => {
    seeding.unserve(fileId);
    void session.unannounce([fileId]).catch(() => {});
  };

  /** Starts (or resumes) the engine for a download record. */
  const launch = (rec: DownloadRecord, detail: FullFileDetail, resuming = true): Running => {
    const users = new Map<string, string>();
    const { handle, manifest, tree } = startEngine(deps, rec, detail, users, resuming);
    // Downloaders serve what they have, and say so to the tracker (a partial seeder): other
    // members' downloads fetch verified pieces from us instead of all from the seeders.
    const partial = !shares.isServed(rec.fileId);
    if (partial) {
      seeding.servePartial(rec.fileId, handle.pieceSource);
      void session.announce([rec.fileId]).catch(() => {});
    }
    const r: Running = {
      id: rec.id,
      handle,
      fileId: rec.fileId,
      users,
      progress: undefined,
      persistedAt: 0,
      pausing: false,
      tree,
    };
    running.set(rec.id, r);
    waiting.delete(rec.id);
    handle.on('event', (e) => {
      if (e.type === 'progress') {
        r.progress = e.progress;
        waiters.progress(rec.id, e.progress);
        // The engine reports at most every 250 ms (DOWNLOAD_PROGRESS_PER_SEC), and once as it completes.
        onEvent({ type: 'downloadProgress', progress: transferOf(rec, handle.snapshot(), users) });
        const now = Date.now();
        if (now - r.persistedAt >= PERSIST_PROGRESS_MS) {
          r.persistedAt = now;
          store.downloads.update(rec.id, { doneBytes: e.progress.verifiedBytes });
        }
      } else if (e.type === 'peerStruck') {
        log.warn({ peerId: e.peerId, piece: e.piece, strikes: e.strikes }, 'a seeder served a corrupt piece');
      } else if (e.type === 'peerDisconnected') {
        // Why a seeder's link ended (a relay gone, a path gone silent): it is dialled again.
        log.info({ downloadId: rec.id, peerId: e.peerId, reason: e.reason }, 'seeder connection lost');
      } else if (e.type === 'peerUpgraded') {
        log.info({ downloadId: rec.id, peerId: e.peerId }, 'relayed seeder now reached directly');
      } else if (e.type === 'peerUpgradeFailed') {
        log.info(
          { downloadId: rec.id, peerId: e.peerId, reason: e.reason },
          'no direct path to a relayed seeder yet',
        );
      } else if (e.type === 'ticketRenewed') {
        log.info({ downloadId: rec.id, peerId: e.peerId }, 'download ticket renewed');
      } else if (e.type === 'peerBanned') {
        log.warn({ peerId: e.peerId, reason: e.reason }, 'peer banned from a download');
        onEvent({ type: 'peerBanned', downloadId: rec.id, peerId: e.peerId, reason: e.reason });
      }
    });
    // Downloaders who announced between the listing this download started from and this watch
    // are pushed to nobody: list the seeders once more when the watch is in place.
    void session
      .watch([rec.fileId])
      .then(() => http.call('getSeeders', { params: { groupId: rec.groupId, file: rec.fileId } }))
      .then((list) => {
        for (const s of listedSeeders(list, identity.peerId, new Map())) {
          if (r.users.has(s.peerId) || !running.has(rec.id)) continue;
          r.users.set(s.peerId, list.seeders.find((x) => x.peerId === s.peerId)?.userId ?? '');
          handle.addSeeder(s);
        }
      })
      .catch(() => {});
    handle.done.then(
      async (result) => {
        running.delete(rec.id);
        results.set(rec.id, { result, users });
        rememberAnalysis(store, rec.id, analysisOf(result.distribution, users, deps.scheduler ?? {}));
        store.downloads.update(rec.id, {
          state: 'completed',
          doneBytes: store.downloads.get(rec.id)?.size ?? rec.size,
          endedAt: Date.now(),
          error: null,
        });
        void session.unwatch([rec.fileId]).catch(() => {});
        waiters.progress(rec.id, handle.progress());
        notify('download', `downloaded '${rec.fileName}' from '${rec.groupId}' to ${rec.dest}`);
        onEvent({ type: 'downloadCompleted', id: rec.id, fileName: rec.fileName, dest: rec.dest });
        reportPeers(http, log, rec.fileId, result.durationMs, result.distribution.peers);
        // A folder is seeded again only whole: a partial one is not the share its id names.
        if (tree === undefined || store.downloads.get(rec.id)?.size === manifest.size)
          await shares.shareDownloaded(rec, manifest);
        // Seeded from dest now, or not at all: the download's own piece source is finished.
        if (!shares.isServed(rec.fileId)) stopServingPartial(rec.fileId);
        waiters.finished(rec.id);
      },
      (err: unknown) => {
        running.delete(rec.id);
        if (!shares.isServed(rec.fileId)) stopServingPartial(rec.fileId);
        void session.unwatch([rec.fileId]).catch(() => {});
        const e = withSeederNames(CoterieError.from(err, 'DOWNLOAD_FAILED'), users);
        const doneBytes = r.progress?.verifiedBytes ?? rec.doneBytes;
        if (r.pausing) {
          store.downloads.update(rec.id, { doneBytes });
        } else {
          // A download that failed on corrupt pieces is where the tracker most needs to hear of them.
          const p = handle.progress();
          reportPeers(
            http,
            log,
            rec.fileId,
            p.elapsedMs,
            p.peers.map((x) => ({ ...x, pieces: x.piecesVerified })),
          );
          failDownload(rec, e, { doneBytes });
          return;
        }
        waiters.finished(rec.id);
      },
    );
    return r;
  };

  /**
   * The one way a download ends failed, wherever it failed (the engine, the
   * tracker at resume, the start itself): the record keeps the reason, the
   * user gets a notice, the event stream a `downloadFailed`, and `--wait`
   * its error. `answered`: the command that started it returns the error
   * itself, so no notice repeats it.
   */
  const failDownload = (
    rec: DownloadRecord,
    err: unknown,
    options: { doneBytes?: number; answered?: boolean } = {},
  ): CoterieError => {
    const e = CoterieError.from(err, 'DOWNLOAD_FAILED');
    store.downloads.update(rec.id, {
      state: 'failed',
      error: e.message,
      endedAt: Date.now(),
      ...(options.doneBytes === undefined ? {} : { doneBytes: options.doneBytes }),
    });
    if (options.answered !== true) notify('download', `download of '${rec.fileName}' failed: ${e.message}`);
    onEvent({ type: 'downloadFailed', id: rec.id, fileName: rec.fileName, reason: e.message });
    waiters.finished(rec.id, e);
    return e;
  };

  /**
   * Launches a download, or queues it when the tracker lists no live seeder
   * (unless --no-wait): `waiting`, its file watched, so the session's
   * seeder_appeared push starts it (onSeederAppeared), with no polling.
   */
  const launchOrQueue = (rec: DownloadRecord, detail: FullFileDetail, resuming: boolean): void => {
    checkedManifest(rec, detail); // a bad manifest fails the download rather than waiting
    if (!askOf(store, rec.id).noWait && !hasLiveSeeder(detail, identity.peerId)) {
      if (store.downloads.get(rec.id)?.state !== 'waiting') {
        store.downloads.update(rec.id, { state: 'waiting' });
        log.info({ id: rec.id, file: rec.fileName }, 'download waits for a seeder');
      }
      void session.watch([rec.fileId]).catch(() => {});
      return;
    }
    store.downloads.update(rec.id, { state: 'active' });
    launch(store.downloads.get(rec.id)!, detail, resuming);
  };

  /** Resumes one download record; when the tracker cannot be reached it waits for the session. */
  const resumeRecord = async (rec: DownloadRecord): Promise<void> => {
    if (stopped || running.has(rec.id)) return;
    const session0 = store.getSession();
    if (session0 === undefined || session0.userId !== rec.userId) {
      waiting.add(rec.id);
      return;
    }
    let detail: FullFileDetail;
    try {
      detail = await getFileDetail(http, { groupId: rec.groupId, file: rec.fileId });
    } catch (err) {
      if (
        err instanceof CoterieError &&
        (err.code === 'TRACKER_UNAVAILABLE' || err.code === 'NOT_LOGGED_IN')
      ) {
        waiting.add(rec.id);
        return;
      }
      failDownload(rec, err);
      return;
    }
    const now = store.downloads.get(rec.id);
    // Paused or cancelled while the tracker answered: it stays so.
    if (stopped || running.has(rec.id) || (now?.state !== 'active' && now?.state !== 'waiting')) return;
    try {
      launchOrQueue(now, detail, true);
      log.info({ id: rec.id, file: rec.fileName, state: now.state }, 'download resumed');
    } catch (err) {
      // A manifest that does not match the file id, say: nobody asked at this start, so tell the user.
      failDownload(rec, err);
    }
  };

  const resumeAll = async (): Promise<void> => {
    for (const rec of store.downloads.list()) {
      if ((rec.state === 'active' || rec.state === 'waiting') && !running.has(rec.id))
        await resumeRecord(rec);
    }
  };

  /** Stops a running download on purpose and waits for its engine to let go of the files. */
  const halt = async (id: number, reason: string): Promise<void> => {
    const r = running.get(id);
    if (r === undefined) return;
    r.pausing = true;
    r.handle.abort(reason);
    await r.handle.done.catch(() => {});
  };

  const pauseAll = async (): Promise<void> => {
    await Promise.allSettled(
      [...running.keys()].map((id) => halt(id, 'paused: the peer is stopping or logging out')),
    );
  };

  /** Moves a download the user paused or cancelled to `state`, its running engine stopped. */
  const stopBy = async (download: string, state: 'paused' | 'cancelled'): Promise<DownloadRecord> => {
    const rec = findDownload(store, download);
    if (rec.state === state) return rec;
    if (
      rec.state === 'completed' ||
      (state === 'paused' && rec.state !== 'active' && rec.state !== 'waiting')
    ) {
      throw new CoterieError(
        'BAD_REQUEST',
        `download #${rec.id} of '${rec.fileName}' is ${rec.state}: nothing to ${state === 'paused' ? 'pause' : 'cancel'}`,
      );
    }
    // The state first: the engine's end then reads as a stop on purpose, and `--wait` says which.
    store.downloads.update(rec.id, { state, ...(state === 'cancelled' ? { endedAt: Date.now() } : {}) });
    waiting.delete(rec.id);
    await halt(rec.id, state === 'paused' ? 'paused by pause_download' : 'cancelled by cancel_download');
    void session.unwatch([rec.fileId]).catch(() => {});
    waiters.finished(rec.id);
    return store.downloads.get(rec.id)!;
  };

  return {
    async start(groupId, fileName, dest, opts) {
      const { path: target, dir } = resolveDestination(dest, fileName);
      for (const d of store.downloads.list()) {
        if ((d.state === 'active' || d.state === 'waiting' || d.state === 'paused') && d.dest === target) {
          throw new CoterieError(
            'DESTINATION_EXISTS',
            `download #${d.id} already writes to ${target}: wait for it, cancel it or choose another destination`,
          );
        }
      }
      const detail = await getFileDetail(http, { groupId, file: fileName }, opts.version);
      const { selection, size } = initialSelection(detail.manifest, opts.only ?? [], opts.exclude ?? []);
      const userId = store.getSession()?.userId ?? '';
      const rec = store.downloads.add({
        userId,
        groupId,
        fileName: detail.name,
        fileId: detail.fileId,
        dest: target,
        size,
        startedAt: Date.now(),
      });
      rememberDestDir(store, rec.id, dir);
      deps.limits?.setDownloadLimit(rec.id, opts.limitBytesPerSec ?? 0);
      rememberSelection(store, rec.id, selection);
      rememberAsk(store, rec.id, { noWait: opts.noWait === true, sequential: opts.sequential === true });
      try {
        if (opts.noWait === true && !hasLiveSeeder(detail, identity.peerId)) {
          throw new CoterieError('NO_SEEDERS', 'no seeder of this file is online: retry when one is');
        }
        launchOrQueue(rec, detail, false);
      } catch (err) {
        throw failDownload(rec, err, { answered: true });
      }
      if (!opts.wait) return view(store.downloads.get(rec.id)!);
      return waiters.waitFor(rec.id, opts);
    },

    async select(groupId, fileName, globs) {
      const rec = downloadToWiden(store, (id) => running.has(id), groupId, fileName);
      const detail = await getFileDetail(http, { groupId, file: rec.fileId });
      const { files, size } = widenSelection(store, rec.id, detail.manifest, globs);
      store.downloads.update(rec.id, { size });
      const r = running.get(rec.id);
      if (r?.tree?.select(files) !== true) {
        await r?.handle.done.catch(() => {}); // a folder ending right now ends first
        store.downloads.update(rec.id, { state: 'active', error: null, endedAt: null });
        launch(store.downloads.get(rec.id)!, detail);
      }
      return view(store.downloads.get(rec.id)!);
    },
    pause: async (download) => view(await stopBy(download, 'paused')),
    async cancel(download) {
      const rec = await stopBy(download, 'cancelled');
      await removePartFiles(rec.dest);
      log.info({ id: rec.id, file: rec.fileName }, 'download cancelled; its part files removed');
      return view(rec);
    },
    async resume(download) {
      const rec = findDownload(store, download);
      if (rec.state === 'completed') {
        throw new CoterieError(
          'BAD_REQUEST',
          `download #${rec.id} of '${rec.fileName}' is completed already`,
        );
      }
      if (rec.state === 'paused' || rec.state === 'failed' || rec.state === 'cancelled') {
        store.downloads.update(rec.id, { state: 'active', error: null, endedAt: null });
        await resumeRecord(store.downloads.get(rec.id)!);
      }
      return view(store.downloads.get(rec.id)!);
    },
    list(download) {
      if (download === undefined) return { downloads: store.downloads.list().map(view) };
      const rec = findDownload(store, download);
      const r = running.get(rec.id);
      const analysis = analysisFor(store, rec.id);
      const detail =
        r === undefined
          ? { id: rec.id, ...(analysis === undefined ? {} : { analysis }) }
          : runningDetail(
              transferOf(rec, r.handle.snapshot(), r.users),
              r.handle.progress().unreachablePieces,
            );
      return { downloads: [view(rec)], detail };
    },
    transfers: () =>
      [...running.values()].map((r) => transferOf(store.downloads.get(r.id)!, r.handle.snapshot(), r.users)),
    onDeleted(groupId, fileIds) {
      const deleted = new Set(fileIds);
      for (const r of running.values()) {
        const rec = store.downloads.get(r.id);
        if (rec === undefined || rec.groupId !== groupId || !deleted.has(r.fileId)) continue;
        r.handle.abort(
          `'${rec.fileName}' was deleted from group '${groupId}' (or fell out of its kept versions)`,
        );
      }
    },
    partialFileIds: () => [...new Set([...running.values()].map((r) => r.fileId))],
    watchedFileIds: () => {
      const userId = store.getSession()?.userId;
      const queued = store.downloads.list().filter((d) => d.state === 'waiting' && d.userId === userId);
      return [...new Set([...running.values(), ...queued].map((r) => r.fileId))];
    },
    onSeederAppeared(e) {
      if (e.peerId === identity.peerId) return;
      for (const r of running.values()) {
        if (r.fileId !== e.fileId) continue;
        const seeder = appearedSeeder(e);
        if (seeder === undefined) continue;
        r.users.set(e.peerId, e.userId);
        r.handle.addSeeder(seeder);
      }
      const userId = store.getSession()?.userId;
      for (const rec of store.downloads.list()) {
        if (rec.state !== 'waiting' || rec.fileId !== e.fileId || rec.userId !== userId) continue;
        log.info(
          { id: rec.id, file: rec.fileName, peerId: e.peerId },
          'a seeder appeared for a waiting download',
        );
        void resumeRecord(rec);
      }
    },
    onPeerMoved(e) {
      const where = movedSeeder(e);
      if (where === undefined || e.peerId === identity.peerId) return;
      for (const r of running.values()) {
        if (r.handle.seederMoved(e.peerId, where))
          log.info(
            { id: r.id, peerId: e.peerId, address: where.address },
            'a seeder moved: trying it there now',
          );
      }
    },
    retryDirect() {
      for (const r of running.values()) r.handle.retryDirect();
    },
    resumeAll,
    pauseAll,
    async stop() {
      stopped = true;
      await pauseAll();
    },
  };
}
