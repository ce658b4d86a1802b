import { existsSync, mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { formatBytes } from '../../core/bytes.js';
import type { StorageStatus } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import type { Manifest } from '../../protocol/manifest.js';
import { MAX_FILES_PER_MESSAGE } from '../../protocol/session.js';
import type { DropOrder, ReplicateOrder } from '../../protocol/session-storage.js';
import { type Bandwidth, createTlsDial, type Dial, type PeerIdentity } from '../../wire/index.js';
import {
  type DownloadHandle,
  download,
  downloadTree,
  getFileDetail,
  listedSeeders,
  type Seeding,
} from '../files/index.js';
import type { PeerStore, ReplicaRecord, StoredManifest } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { TrackerSession } from '../tracker/session.js';
import { removeReplica, replicaProblem } from './replica-files.js';
import { type ReplicaReport, reportsOf } from './report.js';

/**
 * A storage peer's replicas (issue 16): the tracker's `replicate` orders
 * fetched with the download engine into the storage directory (a folder
 * share with the folder's engine, every file of the tree, into a directory
 * of its own), verified piece by piece, held only once complete,
 * kept in peer.db, announced and served by the piece server; `drop` orders
 * undone; the whole account reported after each welcome and every change.
 */
export interface Replicas {
  /** File ids to announce as seeded (held replicas). */
  heldFileIds(): string[];
  onOrder(order: ReplicateOrder | DropOrder): void;
  /** After each welcome: the full account per group (complete), then serving what is held. */
  onTrackerConnected(): void;
  /** A held replica found damaged or gone (scrub, share guard): reported, the tracker repairs it elsewhere. */
  lost(groupId: string, fileId: string, why: 'corrupt' | 'missing'): void;
  /** Starts serving what peer.db says is held (at daemon start). */
  restore(): Promise<void>;
  status(): StorageStatus;
  stop(): Promise<void>;
}

export interface ReplicasDeps {
  store: PeerStore;
  http: TrackerHttpClient;
  session: TrackerSession;
  identity: PeerIdentity;
  seeding: Seeding;
  /** Whether the user shares this file id too (then dropping a replica keeps serving it). */
  isShared: (fileId: string) => boolean;
  /** Where replicas live: DIR/<group>/<file id>, a file or a folder's directory (0700 directories; files 0600 by the daemon's umask). */
  storageDir: string;
  log: Logger;
  /** Wait before reporting a failed fetch missing, so a repeat order is not an instant loop. */
  missingBackoffMs?: number;
  /** A fetch with no progress for this long gives up (NO_SEEDERS). */
  noProgressTimeoutMs?: number;
  /** How holders are dialled: the downloads' own (direct, else through the holder's relays); default TLS over TCP. */
  dial?: Dial;
  /**
   * The daemon's bandwidth limits (set_limits, set_schedule): a fetch's reads are held to its
   * group's download limit, the global one and the schedule's slot, like any download's (the
   * replicas it serves are held to the upload limits by the piece server, from the ticket's group).
   */
  bandwidth?: Bandwidth;
}

/** Replicas fetched at once; the rest wait their turn. */
const MAX_CONCURRENT_FETCHES = 4;
/**
 * While fetches move, the tracker hears so this often (`fetching`): it gives an
 * assignment up after --storage-fetch-stall-ms without progress, however long
 * the fetch (a folder of thousands of small files) takes in all.
 */
const PROGRESS_REPORT_MS = 2_000;

interface Fetch {
  order: ReplicateOrder;
  /** Taken from the queue; the handle exists once the manifest is known. */
  running: boolean;
  handle?: DownloadHandle;
  done?: Promise<void>;
}

const key = (groupId: string, fileId: string) => `${groupId}/${fileId}`;

export function createReplicas(deps: ReplicasDeps): Replicas {
  const { store, http, session, identity, seeding, log } = deps;
  const fetches = new Map<string, Fetch>();
  const queue: ReplicateOrder[] = [];
  let stopped = false;
  const backoffMs = deps.missingBackoffMs ?? 1_000;
  /** Each fetch's verified bytes at the last progress report. */
  const reportedBytes = new WeakMap<Fetch, number>();

  const pathOf = (groupId: string, fileId: string) => join(deps.storageDir, groupId, fileId);
  const heldIn = (groupId: string) => store.replicas.list().filter((r) => r.groupId === groupId);

  const send = (reports: ReplicaReport[]) => {
    for (const message of reportsOf(reports)) {
      void session
        .send(message)
        .catch((err: unknown) => log.warn({ err }, 'replicas report not acknowledged'));
    }
  };
  /** The group's whole account: held, plus what just failed or broke. */
  const report = (groupId: string, extra: { missing?: string[]; corrupt?: string[] } = {}) =>
    send([{ groupId, held: heldIn(groupId).map((r) => r.fileId), ...extra }]);

  /** A folder replica is served from its pages in peer.db, a few at a time (tree-source.ts). */
  const serve = async (rec: ReplicaRecord, manifest: Manifest | StoredManifest) => {
    await seeding.serveFile(rec.fileId, manifest, rec.path, {
      // The file changed under us (edited, truncated): no longer a verified copy.
      onChanged: () => api.lost(rec.groupId, rec.fileId, 'corrupt'),
    });
  };

  /** Stops serving and announcing a file id no other held replica or share keeps. */
  const unserve = (fileId: string) => {
    const other = store.replicas.list().find((r) => r.fileId === fileId);
    const manifest = other && store.replicas.manifest(other.groupId, other.fileId);
    if (other !== undefined && manifest !== undefined) {
      void Promise.resolve()
        .then(() => serve(other, manifest))
        .catch(() => {});
      return;
    }
    if (deps.isShared(fileId)) return;
    seeding.unserve(fileId);
    void session.unannounce([fileId]).catch(() => {});
  };

  /**
   * When any fetch verified bytes since the last look, every order this peer
   * has (running, and queued behind them: it is working through them) is
   * reported moving.
   */
  const reportProgress = () => {
    let moved = false;
    for (const f of fetches.values()) {
      const done = f.handle?.progress().verifiedBytes ?? 0;
      if (done > (reportedBytes.get(f) ?? 0)) moved = true;
      reportedBytes.set(f, done);
    }
    if (!moved) return;
    const byGroup = new Map<string, string[]>();
    for (const f of fetches.values()) {
      const ids = byGroup.get(f.order.groupId) ?? [];
      if (ids.length < MAX_FILES_PER_MESSAGE) ids.push(f.order.fileId);
      byGroup.set(f.order.groupId, ids);
    }
    send([...byGroup].map(([groupId, fetching]) => ({ groupId, held: [], fetching })));
  };
  const progressTimer = setInterval(reportProgress, PROGRESS_REPORT_MS);
  progressTimer.unref();

  const fits = (order: ReplicateOrder) => {
    const offer = store.replicas.offer(order.groupId);
    if (offer === undefined) return true; // the tracker knows an offer made elsewhere: trust its quota
    // Held replicas and the other fetches under way for the group both take from the quota.
    const fetching = [...fetches.values()]
      .filter((f) => f.running && f.order.groupId === order.groupId && f.order.fileId !== order.fileId)
      .reduce((n, f) => n + f.order.size, 0);
    const used = fetching + heldIn(order.groupId).reduce((n, r) => n + r.size, 0);
    return used + order.size <= offer.quotaBytes;
  };

  /** Bytes free where replicas live; the other fetches under way will take theirs too. */
  const freeBytes = (except: Fetch) => {
    const s = statfsSync(deps.storageDir);
    const fetching = [...fetches.values()]
      .filter((f) => f.running && f !== except)
      .reduce((n, f) => n + f.order.size - (f.handle?.progress().verifiedBytes ?? 0), 0);
    return s.bavail * s.bsize - fetching;
  };

  const fetchOne = async (f: Fetch): Promise<void> => {
    const { groupId, fileId } = f.order;
    if (!fits(f.order)) {
      throw new CoterieError(
        'DISK_FULL',
        `a replica of ${fileId.slice(0, 12)} does not fit this peer's quota`,
      );
    }
    // A quota larger than the disk: refused before any byte moves (a disk that fills later
    // still fails the download itself with DISK_FULL).
    const free = freeBytes(f);
    if (f.order.size > free) {
      throw new CoterieError(
        'DISK_FULL',
        `a replica of ${fileId.slice(0, 12)} (${formatBytes(f.order.size)}) does not fit: ${formatBytes(Math.max(0, free))} free in ${deps.storageDir}`,
      );
    }
    // A folder's manifest comes in pages: getFileDetail fetches and checks each, then the whole tree.
    const detail = await getFileDetail(http, { groupId, file: fileId });
    const manifest = detail.manifest;
    if (detail.fileId !== fileId) throw new CoterieError('INVALID_MANIFEST', 'the tracker sent another file');
    const dir = join(deps.storageDir, groupId);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = pathOf(groupId, fileId);
    // What an earlier attempt left (a fetch stopped with the daemon, or killed) is resumed: each
    // file's part and resume files keep its verified pieces, re-checked by the engine as it
    // opens them, and a folder's files already at their place with their size were finished.
    const resuming = existsSync(path);
    const dial =
      deps.bandwidth === undefined
        ? deps.dial
        : deps.bandwidth.throttledDial(deps.dial ?? createTlsDial(identity), groupId);
    const common = {
      fileId,
      seeders: listedSeeders(detail, identity.peerId, new Map()),
      identity,
      noProgressTimeoutMs: deps.noProgressTimeoutMs ?? 20_000,
      ...(dial === undefined ? {} : { dial }),
      getTicket: async () =>
        (
          await http.call('getTicket', {
            params: { groupId, file: fileId },
            body: { peerId: identity.peerId },
          })
        ).ticket,
    };
    const handle =
      manifest.files === undefined
        ? download({ ...common, manifest, dest: path, overwrite: true })
        : downloadTree({ ...common, manifest, root: path, selected: manifest.files.keys(), resuming });
    f.handle = handle;
    const current = () => fetches.get(key(groupId, fileId)) === f;
    if (!current()) handle.abort('dropped');
    await handle.done;
    if (!current()) {
      removeReplica(path);
      return;
    }
    const rec: ReplicaRecord = {
      groupId,
      fileId,
      path,
      size: manifest.size,
      heldAt: Date.now(),
    };
    store.replicas.put(rec, manifest);
    // Served from what peer.db now keeps: a folder's pages, not the manifest the fetch held whole.
    await serve(rec, store.replicas.manifest(groupId, fileId) ?? manifest);
    void session.announce([fileId]).catch(() => {});
    log.info({ groupId, fileId, size: manifest.size }, 'replica held');
    report(groupId);
  };

  const pump = () => {
    const runningCount = () => [...fetches.values()].filter((f) => f.running).length;
    while (!stopped && queue.length > 0 && runningCount() < MAX_CONCURRENT_FETCHES) {
      const order = queue.shift()!;
      const k = key(order.groupId, order.fileId);
      const f = fetches.get(k);
      if (f === undefined || f.running) continue;
      f.running = true;
      f.done = fetchOne(f);
      f.done.then(
        () => {
          if (fetches.get(k) === f) fetches.delete(k);
          pump();
        },
        (err: unknown) => {
          if (stopped) return;
          if (fetches.get(k) !== f) {
            // Dropped while it ran: its slot is free, and what it wrote (its engines have stopped) goes.
            if (!fetches.has(k)) removeReplica(pathOf(order.groupId, order.fileId));
            pump();
            return;
          }
          const e = CoterieError.from(err, 'DOWNLOAD_FAILED');
          log.warn(
            { groupId: order.groupId, fileId: order.fileId, code: e.code, err: e.message },
            'replica fetch failed',
          );
          // Reported missing after a pause (none for a quota): the tracker places it elsewhere.
          setTimeout(
            () => {
              if (fetches.get(k) === f) fetches.delete(k);
              removeReplica(pathOf(order.groupId, order.fileId));
              if (!stopped) report(order.groupId, { missing: [order.fileId] });
              pump();
            },
            e.code === 'DISK_FULL' ? 0 : backoffMs,
          ).unref();
        },
      );
    }
  };

  const replicate = (order: ReplicateOrder) => {
    const held = store.replicas.get(order.groupId, order.fileId);
    if (held !== undefined) {
      report(order.groupId); // an order sent again (after a welcome): already done
      return;
    }
    const k = key(order.groupId, order.fileId);
    if (fetches.has(k)) return;
    fetches.set(k, { order, running: false });
    queue.push(order);
    pump();
  };

  const drop = (order: DropOrder) => {
    const k = key(order.groupId, order.fileId);
    const f = fetches.get(k);
    if (f !== undefined) {
      fetches.delete(k);
      f.handle?.abort(`dropped: ${order.reason}`);
      log.info(
        { groupId: order.groupId, fileId: order.fileId, reason: order.reason },
        'replica fetch dropped',
      );
    }
    const rec = store.replicas.get(order.groupId, order.fileId);
    store.replicas.remove(order.groupId, order.fileId);
    if (rec !== undefined) {
      unserve(order.fileId);
      removeReplica(rec.path);
      log.info({ groupId: order.groupId, fileId: order.fileId, reason: order.reason }, 'replica dropped');
    }
    removeReplica(pathOf(order.groupId, order.fileId));
    report(order.groupId);
  };

  const api: Replicas = {
    heldFileIds: () => [...new Set(store.replicas.list().map((r) => r.fileId))],
    onOrder(order) {
      if (stopped) return;
      if (order.type === 'replicate') replicate(order);
      else drop(order);
    },
    onTrackerConnected() {
      const groups = new Set([
        ...store.replicas.list().map((r) => r.groupId),
        ...store.replicas.offers().map((o) => o.groupId),
      ]);
      send(
        [...groups].map((groupId) => ({
          groupId,
          held: heldIn(groupId).map((r) => r.fileId),
          complete: true,
        })),
      );
    },
    lost(groupId, fileId, why) {
      const rec = store.replicas.get(groupId, fileId);
      if (rec === undefined) return;
      store.replicas.remove(groupId, fileId);
      unserve(fileId);
      removeReplica(rec.path);
      log.warn({ groupId, fileId, why }, 'replica lost');
      report(groupId, why === 'corrupt' ? { corrupt: [fileId] } : { missing: [fileId] });
    },
    async restore() {
      for (const rec of store.replicas.list()) {
        try {
          const stored = store.replicas.manifest(rec.groupId, rec.fileId);
          if (stored === undefined) continue; // dropped meanwhile
          const problem = replicaProblem(rec.path, stored);
          if (problem !== undefined) throw new Error(problem);
          await serve(rec, stored);
        } catch (err) {
          log.warn(
            { groupId: rec.groupId, fileId: rec.fileId, err: (err as Error).message },
            'replica unusable',
          );
          store.replicas.remove(rec.groupId, rec.fileId);
          // Reported missing at the next welcome: the complete account leaves it out.
        }
      }
    },
    status() {
      const held = store.replicas.list();
      return {
        replicas: held.length,
        bytes: held.reduce((n, r) => n + r.size, 0),
        offers: store.replicas
          .offers()
          .map((o) => ({ groupId: o.groupId, quotaBytes: o.quotaBytes, zone: o.zone })),
        fetching: [...fetches.values()].map((f) => {
          const p = f.handle?.progress();
          return {
            groupId: f.order.groupId,
            fileId: f.order.fileId,
            size: f.order.size,
            doneBytes: p?.verifiedBytes ?? 0,
          };
        }),
      };
    },
    async stop() {
      stopped = true;
      clearInterval(progressTimer);
      const running = [...fetches.values()];
      fetches.clear();
      for (const f of running) f.handle?.abort('the peer is stopping');
      await Promise.allSettled(running.map((f) => f.done));
    },
  };
  return api;
}
