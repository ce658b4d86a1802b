import { formatHostPort } from '../../protocol/addresses.js';
import type { TransferProgress } from '../../protocol/peer-events.js';
import type { DownloadRecord } from '../store/index.js';
import type { DownloadSnapshot } from './download/index.js';

/**
 * A running download as the transfer view shows it (the `downloadProgress`
 * event and the web UI's snapshot): the record's names, the engine's
 * snapshot, each seeder's user as the tracker named it.
 */
export function transferOf(
  rec: DownloadRecord,
  s: DownloadSnapshot,
  users: ReadonlyMap<string, string>,
): TransferProgress {
  const { id, groupId, fileName, fileId, dest, size } = rec;
  return {
    ...{ id, groupId, fileName, fileId, dest, size },
    doneBytes: s.verifiedBytes,
    rateBytesPerSec: s.rateBytesPerSec,
    etaSeconds: s.etaSeconds,
    pieceCount: s.pieceCount,
    piecesVerified: s.piecesVerified,
    bitfield: s.bitfield.toString('base64'),
    peers: s.peers.map((p) => ({
      peerId: p.peerId,
      userId: users.get(p.peerId) ?? null,
      address: formatHostPort(p.address.host, p.address.port),
      connection: p.connection,
      state: p.state,
      score: Math.round(p.score * 1000) / 1000,
      rateBytesPerSec: Math.round(p.rateBytesPerSec),
      piecesVerified: p.piecesVerified,
      bytes: p.bytes,
      ...(p.banReason === undefined ? {} : { banReason: p.banReason }),
      ...(p.lastError === undefined ? {} : { lastError: p.lastError }),
    })),
  };
}
