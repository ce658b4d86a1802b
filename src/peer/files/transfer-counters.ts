import type { DownloadHandle } from './download/index.js';

/** The peer's transfer totals since it started, as its /metrics reports them. */
export interface TransferTotals {
  /** Bytes of pieces verified by this peer's downloads (resumed pieces not counted again). */
  bytesDownloaded: number;
  piecesVerified: number;
  /** Pieces that failed their hash (the seeder that sent one is struck). */
  piecesFailed: number;
  /** Connections to seeders open now, over every running download. */
  seederConnections: number;
}

export interface TransferCounters {
  /** Counts a download's events until it ends. */
  watch(handle: Pick<DownloadHandle, 'on' | 'off' | 'progress' | 'done'>): void;
  totals(): TransferTotals;
}

/** Plain numbers, counted as downloads report: the metrics library is loaded only when scraped. */
export function createTransferCounters(): TransferCounters {
  const totals: TransferTotals = {
    bytesDownloaded: 0,
    piecesVerified: 0,
    piecesFailed: 0,
    seederConnections: 0,
  };
  return {
    watch(handle) {
      let verifiedBytes = handle.progress().verifiedBytes;
      let connected = 0;
      const countVerified = (now: number) => {
        totals.bytesDownloaded += Math.max(0, now - verifiedBytes);
        verifiedBytes = Math.max(verifiedBytes, now);
      };
      const onEvent: Parameters<typeof handle.on>[1] = (e) => {
        if (e.type === 'pieceVerified') totals.piecesVerified++;
        else if (e.type === 'peerStruck') totals.piecesFailed++;
        else if (e.type === 'peerConnected') {
          connected++;
          totals.seederConnections++;
        } else if (e.type === 'peerDisconnected' && connected > 0) {
          connected--;
          totals.seederConnections--;
        } else if (e.type === 'progress') countVerified(e.progress.verifiedBytes);
      };
      handle.on('event', onEvent);
      const ended = () => {
        handle.off('event', onEvent);
        // Its last progress, whether or not an event said it before `done` settled.
        countVerified(handle.progress().verifiedBytes);
        totals.seederConnections -= connected;
        connected = 0;
      };
      handle.done.then(ended, ended);
    },
    totals: () => ({ ...totals }),
  };
}
