import type { Logger } from 'pino';
import type { FileDetail } from '../../protocol/api.js';
import type {
  DownloadView,
  PeerContribution,
  Progress,
  ShowDownloadsResult,
} from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import type { TransferProgress } from '../../protocol/peer-events.js';
import type { SessionEvent } from '../../protocol/session.js';
import type { Dial, PeerIdentity } from '../../wire/index.js';
import { PEER_DEFAULTS } from '../config.js';
import type { CommandIO, DownloadOptions } from '../control/index.js';
import type { Notice, PeerEvent } from '../notices.js';
import { rememberDestDir, resolveDestination } from '../paths.js';
import type { DownloadRecord, PeerStore } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { TrackerSession } from '../tracker/session.js';
import type {
  DownloadHandle,
  DownloadProgress,
  DownloadResult,
  TreeDownloadHandle,
} from './download/index.js';
import { appearedSeeder, reportPeers, withSeederNames } from './download-seeders.js';
import { type DownloadLimits, startEngine } from './download-start.js';
import type { Seeding } from './seeding.js';
import { downloadToWiden, initialSelection, rememberSelection, widenSelection } from './selection.js';
import type { Shares } from './shares.js';
import { transferOf } from './transfer-view.js';

/**
 * The peer's downloads: each one a row of the store (so it survives
 * restarts) driving the download engine; seeders from the tracker's lookup
 * and, while it runs, from the session's seeder events; `--wait` waiters;
 * pause on shutdown or logout, resume when the tracker answers again.
 */
export interface Downloads {
  start(groupId: string, fileName: string, dest: string, options: DownloadOptions): Promise<DownloadView>;
  /** select_files: widens the selection of the latest download of a folder (restarting it if it ended). */
  select(groupId: string, fileName: string, globs: string[]): Promise<DownloadView>;
  /** Files deleted from a group: their running downloads there fail, saying so. */
  onDeleted(groupId: string, fileIds: readonly string[]): void;
  list(): ShowDownloadsResult;
  /** The running downloads with their peers and piece maps (what `downloadProgress` events carry). */
  transfers(): TransferProgress[];
  /** Files whose seeders the session should report (the running downloads). */
  watchedFileIds(): string[];
  onSeederAppeared(e: Extract<SessionEvent, { type: 'seeder_appeared' }>): void;
  resumeAll(): Promise<void>;
  /** Stops every running download resumably (logout, shutdown). */
  pauseAll(): Promise<void>;
  stop(): Promise<void>;
}

export interface DownloadsDeps {
  /** How seeders are dialled (relays included); default: TLS over TCP. */
  dial?: Dial;
  limits?: DownloadLimits;
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  identity: PeerIdentity;
  seeding: Seeding;
  shares: Pick<Shares, 'isServed' | 'shareDownloaded'>;
  notify: (kind: Notice['kind'], text: string) => void;
  onEvent: (e: PeerEvent) => void;
  log: Logger;
}

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
  /** Set when the daemon stops it (logout, shutdown): the download pauses rather than fails. */
  pausing: boolean;
  listeners: Set<(p: DownloadProgress) => void>;
  /** A folder's download, which select_files widens. */
  tree: TreeDownloadHandle | undefined;
}

export function createDownloads(deps: DownloadsDeps): Downloads {
  const { store, http, session, identity, seeding, shares, notify, onEvent, log } = deps;
  const running = new Map<number, Running>();
  const results = new Map<number, { result: DownloadResult; users: Map<string, string> }>();
  /** Downloads to resume once the tracker answers. */
  const waiting = new Set<number>();
  let stopped = false;

  const peersReady = (p: DownloadProgress | undefined) =>
    p === undefined ? 0 : p.peers.filter((x) => x.connection === 'ready').length;

  const contributions = (id: number): PeerContribution[] | undefined => {
    const r = results.get(id);
    if (r === undefined) return undefined;
    return r.result.distribution.peers
      .filter((p) => p.pieces > 0)
      .sort((a, b) => b.pieces - a.pieces)
      .map((p) => ({
        peerId: p.peerId,
        userId: r.users.get(p.peerId) ?? null,
        pieces: p.pieces,
        bytes: p.bytes,
      }));
  };

  const view = (rec: DownloadRecord): DownloadView => {
    const r = running.get(rec.id);
    const p = r?.progress;
    const done = results.get(rec.id);
    const contrib = contributions(rec.id);
    let rate = p?.rateBytesPerSec ?? 0;
    if (rec.state === 'completed') {
      const ms = done?.result.durationMs ?? (rec.endedAt ?? rec.startedAt) - rec.startedAt;
      rate = ms > 0 ? (rec.size * 1000) / ms : 0;
    }
    return {
      id: rec.id,
      groupId: rec.groupId,
      fileName: rec.fileName,
      fileId: rec.fileId,
      dest: rec.dest,
      size: rec.size,
      state: rec.state === 'active' && r === undefined ? 'paused' : rec.state,
      doneBytes: p?.verifiedBytes ?? rec.doneBytes,
      rateBytesPerSec: Math.round(rate),
      peers: r !== undefined ? peersReady(p) : (contrib?.length ?? 0),
      error: rec.error,
      startedAt: rec.startedAt,
      endedAt: rec.endedAt,
      ...(contrib === undefined ? {} : { contributions: contrib }),
    };
  };

  /** Starts (or resumes) the engine for a download record. */
  const launch = (rec: DownloadRecord, detail: FileDetail, resuming = true): Running => {
    const users = new Map<string, string>();
    const { handle, manifest, tree } = startEngine(deps, rec, detail, users, resuming);
    // Downloaders serve what they have: other members' downloads can fetch verified pieces from us.
    if (tree === undefined) seeding.servePartial(rec.fileId, handle.pieceSource);
    const r: Running = {
      id: rec.id,
      handle,
      fileId: rec.fileId,
      users,
      progress: undefined,
      persistedAt: 0,
      pausing: false,
      listeners: new Set(),
      tree,
    };
    running.set(rec.id, r);
    waiting.delete(rec.id);
    handle.on('event', (e) => {
      if (e.type === 'progress') {
        r.progress = e.progress;
        for (const l of r.listeners) l(e.progress);
        // The engine reports at most every 250 ms (DOWNLOAD_PROGRESS_PER_SEC), and once as it completes.
        onEvent({ type: 'downloadProgress', progress: transferOf(rec, handle.snapshot(), users) });
        const now = Date.now();
        if (now - r.persistedAt >= PERSIST_PROGRESS_MS) {
          r.persistedAt = now;
          store.downloads.update(rec.id, { doneBytes: e.progress.verifiedBytes });
        }
      } else if (e.type === 'peerStruck') {
        log.warn({ peerId: e.peerId, piece: e.piece, strikes: e.strikes }, 'a seeder served a corrupt piece');
      } else if (e.type === 'ticketRenewed') {
        log.info({ downloadId: rec.id, peerId: e.peerId }, 'download ticket renewed');
      } else if (e.type === 'peerBanned') {
        log.warn({ peerId: e.peerId, reason: e.reason }, 'peer banned from a download');
        onEvent({ type: 'peerBanned', downloadId: rec.id, peerId: e.peerId, reason: e.reason });
      }
    });
    void session.watch([rec.fileId]).catch(() => {});
    handle.done.then(
      async (result) => {
        running.delete(rec.id);
        results.set(rec.id, { result, users });
        store.downloads.update(rec.id, {
          state: 'completed',
          doneBytes: store.downloads.get(rec.id)?.size ?? rec.size,
          endedAt: Date.now(),
          error: null,
        });
        void session.unwatch([rec.fileId]).catch(() => {});
        for (const l of r.listeners) l(handle.progress());
        notify('download', `downloaded '${rec.fileName}' from '${rec.groupId}' to ${rec.dest}`);
        onEvent({ type: 'downloadCompleted', id: rec.id, fileName: rec.fileName, dest: rec.dest });
        reportPeers(http, log, rec.fileId, result.durationMs, result.distribution.peers);
        // A folder is seeded again only whole: a partial one is not the share its id names.
        if (tree === undefined || store.downloads.get(rec.id)?.size === manifest.size)
          await shares.shareDownloaded(rec, manifest);
        // Seeded from dest now, or not at all: the download's own piece source is finished.
        if (!shares.isServed(rec.fileId)) seeding.unserve(rec.fileId);
        finished(rec.id);
      },
      (err: unknown) => {
        running.delete(rec.id);
        if (!shares.isServed(rec.fileId)) seeding.unserve(rec.fileId);
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
        finished(rec.id);
      },
    );
    return r;
  };

  /** Waiters of `--wait`, told when a download ends. */
  const endWaiters = new Map<number, Set<(err?: CoterieError) => void>>();
  const finished = (id: number, err?: CoterieError) => {
    const set = endWaiters.get(id);
    endWaiters.delete(id);
    for (const w of set ?? []) w(err);
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
    finished(rec.id, e);
    return e;
  };

  const waitFor = (id: number, io: CommandIO): Promise<DownloadView> =>
    new Promise((resolve, reject) => {
      const rec0 = store.downloads.get(id)!;
      const toProgress = (p: DownloadProgress): Progress => ({
        kind: 'download',
        label: rec0.fileName,
        doneBytes: p.verifiedBytes,
        totalBytes: p.totalBytes,
        rateBytesPerSec: p.rateBytesPerSec,
        peers: peersReady(p),
      });
      const r = running.get(id);
      const listener = (p: DownloadProgress) => io.onProgress?.(toProgress(p));
      r?.listeners.add(listener);
      const settle = (err?: CoterieError) => {
        r?.listeners.delete(listener);
        const rec = store.downloads.get(id)!;
        if (rec.state === 'completed') resolve(view(rec));
        else if (err !== undefined) {
          reject(
            new CoterieError(err.code, `download of '${rec.fileName}' failed: ${err.message}`, {
              cause: err,
            }),
          );
        } else {
          reject(
            new CoterieError(
              'DOWNLOAD_FAILED',
              `download of '${rec.fileName}' paused: the peer is stopping; it resumes at the next start`,
            ),
          );
        }
      };
      const rec = store.downloads.get(id)!;
      if (rec.state !== 'active')
        return settle(
          rec.state === 'failed' ? new CoterieError('DOWNLOAD_FAILED', rec.error ?? 'failed') : undefined,
        );
      const set = endWaiters.get(id) ?? new Set();
      endWaiters.set(id, set);
      set.add(settle);
      io.signal?.addEventListener(
        'abort',
        () => {
          set.delete(settle);
          r?.listeners.delete(listener);
          reject(new CoterieError('UNAVAILABLE', 'stopped waiting; the download goes on'));
        },
        { once: true },
      );
    });

  /** Resumes one download record; when the tracker cannot be reached it waits for the session. */
  const resume = async (rec: DownloadRecord): Promise<void> => {
    if (stopped || running.has(rec.id)) return;
    const session0 = store.getSession();
    if (session0 === undefined || session0.userId !== rec.userId) {
      waiting.add(rec.id);
      return;
    }
    let detail: FileDetail;
    try {
      detail = await http.call('getFile', { params: { groupId: rec.groupId, file: rec.fileId } });
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
    if (stopped || running.has(rec.id)) return;
    try {
      launch(rec, detail);
      log.info({ id: rec.id, file: rec.fileName }, 'download resumed');
    } catch (err) {
      // A manifest that does not match the file id, say: nobody asked at this start, so tell the user.
      failDownload(rec, err);
    }
  };

  const resumeAll = async (): Promise<void> => {
    for (const rec of store.downloads.list()) {
      if (rec.state === 'active' && !running.has(rec.id)) await resume(rec);
    }
  };

  const pauseAll = async (): Promise<void> => {
    const all = [...running.values()];
    for (const r of all) {
      r.pausing = true;
      r.handle.abort('paused: the peer is stopping or logging out');
    }
    await Promise.allSettled(all.map((r) => r.handle.done));
  };

  return {
    async start(groupId, fileName, dest, opts) {
      const { path: target, dir } = resolveDestination(dest, fileName);
      for (const d of store.downloads.list()) {
        if (d.state === 'active' && d.dest === target) {
          throw new CoterieError(
            'DESTINATION_EXISTS',
            `download #${d.id} already writes to ${target}: wait for it or choose another destination`,
          );
        }
      }
      const detail = await http.call('getFile', {
        params: { groupId, file: fileName },
        ...(opts.version === undefined ? {} : { query: { version: String(opts.version) } }),
      });
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
      try {
        launch(rec, detail, false);
      } catch (err) {
        throw failDownload(rec, err, { answered: true });
      }
      if (!opts.wait) return view(store.downloads.get(rec.id)!);
      return waitFor(rec.id, opts);
    },

    async select(groupId, fileName, globs) {
      const rec = downloadToWiden(store, (id) => running.has(id), groupId, fileName);
      const detail = await http.call('getFile', { params: { groupId, file: rec.fileId } });
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
    list: () => ({ downloads: store.downloads.list().map(view) }),
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
    watchedFileIds: () => [...new Set([...running.values()].map((r) => r.fileId))],
    onSeederAppeared(e) {
      for (const r of running.values()) {
        if (r.fileId !== e.fileId || e.peerId === identity.peerId) continue;
        const seeder = appearedSeeder(e);
        if (seeder === undefined) continue;
        r.users.set(e.peerId, e.userId);
        r.handle.addSeeder(seeder);
      }
    },
    resumeAll,
    pauseAll,
    async stop() {
      stopped = true;
      await pauseAll();
    },
  };
}
