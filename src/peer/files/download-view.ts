import type { DownloadView, PeerContribution } from '../../protocol/control.js';
import type { DownloadRecord } from '../store/index.js';
import type { DownloadProgress, DownloadResult } from './download/index.js';

/** A download's end as the daemon saw it: the engine's result and who runs each peer. */
export interface EndedDownload {
  result: DownloadResult;
  users: Map<string, string>;
}

/** Peers with a connection up right now. */
export const peersReady = (p: DownloadProgress | undefined): number =>
  p === undefined ? 0 : p.peers.filter((x) => x.connection === 'ready').length;

function contributionsOf(done: EndedDownload): PeerContribution[] {
  return done.result.distribution.peers
    .filter((p) => p.pieces > 0)
    .sort((a, b) => b.pieces - a.pieces)
    .map((p) => ({
      peerId: p.peerId,
      userId: done.users.get(p.peerId) ?? null,
      pieces: p.pieces,
      bytes: p.bytes,
    }));
}

/**
 * What show_downloads says of a record: its stored fields, the engine's
 * latest progress while it runs (`running`: undefined when it does not),
 * and who served it once it ended in this daemon's run.
 */
export function downloadView(
  rec: DownloadRecord,
  running: { progress: DownloadProgress | undefined } | undefined,
  done: EndedDownload | undefined,
): DownloadView {
  const p = running?.progress;
  const contrib = done === undefined ? undefined : contributionsOf(done);
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
    // Active but not running: the daemon waits for the tracker to answer before resuming it.
    state: rec.state === 'active' && running === undefined ? 'paused' : rec.state,
    doneBytes: p?.verifiedBytes ?? rec.doneBytes,
    rateBytesPerSec: Math.round(rate),
    peers: running !== undefined ? peersReady(p) : (contrib?.length ?? 0),
    error: rec.error,
    startedAt: rec.startedAt,
    endedAt: rec.endedAt,
    ...(contrib === undefined ? {} : { contributions: contrib }),
  };
}
