import type { DownloadView, Progress } from '../../protocol/control.js';
import { CoterieError } from '../../protocol/errors.js';
import type { CommandIO } from '../control/index.js';
import type { DownloadRecord, PeerStore } from '../store/index.js';
import type { DownloadProgress } from './download/index.js';
import { peersReady } from './download-view.js';

/** Why a download a `--wait` waits on stopped without completing, by the state it stopped in. */
function stoppedError(rec: DownloadRecord, err: CoterieError | undefined): CoterieError {
  const what = `download of '${rec.fileName}'`;
  if (err !== undefined) return new CoterieError(err.code, `${what} failed: ${err.message}`, { cause: err });
  if (rec.state === 'failed') return new CoterieError('DOWNLOAD_FAILED', `${what} failed: ${rec.error}`);
  if (rec.state === 'cancelled') return new CoterieError('DOWNLOAD_FAILED', `${what} was cancelled`);
  if (rec.state === 'paused')
    return new CoterieError('DOWNLOAD_FAILED', `${what} paused: resume_download ${rec.id} goes on`);
  return new CoterieError(
    'DOWNLOAD_FAILED',
    `${what} paused: the peer is stopping; it resumes at the next start`,
  );
}

/**
 * `download_file --wait`: the waiters of each download, told of its progress
 * and of its end (completed, failed, paused, cancelled). A waiter outlives
 * the engine runs of its download: one queued for seeders starts later.
 */
export function createWaiters(store: PeerStore, view: (rec: DownloadRecord) => DownloadView) {
  const ends = new Map<number, Set<(err?: CoterieError) => void>>();
  const listeners = new Map<number, Set<(p: DownloadProgress) => void>>();

  return {
    progress(id: number, p: DownloadProgress): void {
      for (const l of listeners.get(id) ?? []) l(p);
    },
    /** The download stopped (ended, or paused): every waiter settles by its record's state. */
    finished(id: number, err?: CoterieError): void {
      const set = ends.get(id);
      ends.delete(id);
      for (const w of set ?? []) w(err);
    },
    waitFor(id: number, io: CommandIO): Promise<DownloadView> {
      return new Promise((resolve, reject) => {
        const rec0 = store.downloads.get(id)!;
        const listener = (p: DownloadProgress) =>
          io.onProgress?.({
            kind: 'download',
            label: rec0.fileName,
            doneBytes: p.verifiedBytes,
            totalBytes: p.totalBytes,
            rateBytesPerSec: p.rateBytesPerSec,
            peers: peersReady(p),
          } satisfies Progress);
        const own = listeners.get(id) ?? new Set();
        listeners.set(id, own);
        own.add(listener);
        const settle = (err?: CoterieError) => {
          own.delete(listener);
          const rec = store.downloads.get(id)!;
          if (rec.state === 'completed') resolve(view(rec));
          else reject(stoppedError(rec, err));
        };
        const rec = store.downloads.get(id)!;
        if (rec.state !== 'active' && rec.state !== 'waiting') return settle();
        const set = ends.get(id) ?? new Set();
        ends.set(id, set);
        set.add(settle);
        io.signal?.addEventListener(
          'abort',
          () => {
            set.delete(settle);
            own.delete(listener);
            reject(new CoterieError('UNAVAILABLE', 'stopped waiting; the download goes on'));
          },
          { once: true },
        );
      });
    },
  };
}
