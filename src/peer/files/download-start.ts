import type { SchedulerOptions } from '../../core/scheduler.js';
import { CoterieError } from '../../protocol/errors.js';
import { computeFileId, type Manifest, validateManifest } from '../../protocol/manifest.js';
import type { Dial, PeerIdentity } from '../../wire/index.js';
import { destDirOf } from '../paths.js';
import type { DownloadRecord, PeerStore } from '../store/index.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import { type DownloadHandle, download, downloadTree, type TreeDownloadHandle } from './download/index.js';
import type { RuleWeights } from './download-detail.js';
import { askOf } from './download-options.js';
import { listedSeeders } from './download-seeders.js';
import type { FullFileDetail } from './manifest-transfer.js';
import { selectedFiles, selectionOf } from './selection.js';
import type { TransferCounters } from './transfer-counters.js';

/** A download's engine as started: a file's, or a folder's (which can widen its selection). */
export interface StartedEngine {
  handle: DownloadHandle;
  manifest: Manifest;
  /** Set for a folder. */
  tree?: TreeDownloadHandle;
}

/** What a download's dial goes through: the bandwidth limits (peer/limits.ts). */
export interface DownloadLimits {
  dial(dial: Dial, download: { id: number; groupId: string }): Dial;
  setDownloadLimit(downloadId: number, bytesPerSec: number): void;
  /** How a download held to a rate requests (its block size and backlog), from the limits in force. */
  pipe(download: { id: number; groupId: string }): DownloadPipe;
}

/** A rate-limited download's scheduler options (peer/limits.ts). */
export type DownloadPipe = Pick<SchedulerOptions, 'pipeCapBytes'> &
  Partial<Pick<SchedulerOptions, 'blockSizeBytes'>>;

/** The tracker's manifest for a record, well formed and the record's file id's (else INVALID_MANIFEST). */
export function checkedManifest(rec: DownloadRecord, detail: Pick<FullFileDetail, 'manifest'>): Manifest {
  const manifest = validateManifest(detail.manifest);
  if (computeFileId(manifest) !== rec.fileId) {
    throw new CoterieError('INVALID_MANIFEST', 'the tracker sent a manifest that does not match the file id');
  }
  return manifest;
}

/**
 * Starts the engine of a download record from the tracker's detail: the
 * manifest checked (INVALID_MANIFEST when it is malformed, holds a bad path,
 * or is not the file id's: getFileDetail checked it once, this checks what
 * it is given) before anything touches the disk, then a file's
 * engine or a folder's with the selection kept for the record.
 */
export function startEngine(
  deps: {
    store: PeerStore;
    http: TrackerHttpClient;
    identity: PeerIdentity;
    dial?: Dial | undefined;
    limits?: DownloadLimits | undefined;
    transfers?: TransferCounters | undefined;
    scheduler?: RuleWeights | undefined;
  },
  rec: DownloadRecord,
  detail: FullFileDetail,
  users: Map<string, string>,
  resuming: boolean,
): StartedEngine {
  const { store, http, identity } = deps;
  const manifest = checkedManifest(rec, detail);
  const common = {
    fileId: rec.fileId,
    seeders: listedSeeders(detail, identity.peerId, users),
    identity,
    // A transport other than TLS over TCP (relay circuits); the engine's own dial otherwise.
    ...(deps.dial === undefined
      ? {}
      : { dial: deps.limits?.dial(deps.dial, { id: rec.id, groupId: rec.groupId }) ?? deps.dial }),
    getTicket: async () =>
      (
        await http.call('getTicket', {
          params: { groupId: rec.groupId, file: rec.fileId },
          body: { peerId: identity.peerId },
        })
      ).ticket,
  };
  if (manifest.files !== undefined) {
    const tree = downloadTree({
      ...common,
      manifest,
      root: rec.dest,
      selected: selectedFiles(manifest, selectionOf(store, rec.id)),
      resuming,
      scheduler: { ...schedulerOf(deps.scheduler, store, rec.id), ...deps.limits?.pipe(rec) },
    });
    deps.transfers?.watch(tree);
    return { handle: tree, manifest, tree };
  }
  const destDir = destDirOf(store, rec.id);
  const handle = download({
    ...common,
    manifest,
    dest: rec.dest,
    scheduler: { ...schedulerOf(deps.scheduler, store, rec.id), ...deps.limits?.pipe(rec) },
    ...(destDir === undefined ? {} : { destDir }),
  });
  deps.transfers?.watch(handle);
  return { handle, manifest };
}

/** The daemon's α and β, and download_file --sequential: a file's or a folder's alike. */
function schedulerOf(rule: RuleWeights | undefined, store: PeerStore, id: number) {
  return { ...rule, ...(askOf(store, id).sequential ? { sequential: true } : {}) };
}
