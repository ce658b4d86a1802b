import type { PeerStore } from '../store/index.js';

type MetaStore = Pick<PeerStore, 'getMeta' | 'setMeta'>;

/**
 * How a download was asked for, kept in peer.db's meta beside its record so
 * that a restart resumes it the same way: `noWait` (download_file --no-wait:
 * no queueing, NO_SEEDERS at once) and `sequential` (pieces in order).
 */
export interface DownloadAsk {
  noWait: boolean;
  sequential: boolean;
}

const askKey = (downloadId: number) => `download_ask:${downloadId}`;

export function rememberAsk(store: MetaStore, downloadId: number, ask: DownloadAsk): void {
  store.setMeta(askKey(downloadId), JSON.stringify(ask));
}

export function askOf(store: MetaStore, downloadId: number): DownloadAsk {
  try {
    const v = JSON.parse(store.getMeta(askKey(downloadId)) ?? '{}') as Partial<DownloadAsk>;
    return { noWait: v.noWait === true, sequential: v.sequential === true };
  } catch {
    return { noWait: false, sequential: false }; // damaged: the defaults
  }
}
