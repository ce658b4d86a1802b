import { formatBytes } from '../core/bytes.js';
import type { AssignmentAnalysis, DownloadDetail } from '../protocol/control.js';
import type { TransferPeer } from '../protocol/peer-events.js';
import { table } from './text-table.js';

/**
 * show_downloads <download>: why a running download is not at 100 % (each
 * peer's state, the pieces nobody online has), or the chunk-assignment
 * analysis of one that ended.
 */
export function formatDownloadDetail(d: DownloadDetail): string {
  const out: string[] = [];
  if (d.peers !== undefined) {
    out.push(
      d.peers.length === 0
        ? 'peers: none connected'
        : table(
            ['PEER', 'USER', 'ADDRESS', 'SCORE', 'PIECES', 'RATE', 'STATE'],
            d.peers.map((p) => [
              p.peerId.slice(0, 12),
              p.userId ?? '?',
              p.address,
              p.score.toFixed(2),
              String(p.piecesVerified),
              `${formatBytes(p.rateBytesPerSec)}/s`,
              peerState(p),
            ]),
          ),
    );
  }
  if (d.unreachable !== undefined) {
    out.push(
      d.unreachable.count === 0
        ? 'every missing piece is held by a connected peer'
        : `${d.unreachable.count} missing pieces nobody online has: ${d.unreachable.ranges
            .map(([a, b]) => (a === b ? String(a) : `${a}-${b}`))
            .join(', ')}`,
    );
  }
  if (d.analysis !== undefined) out.push(formatAnalysis(d.analysis));
  if (out.length === 0) out.push('no peer figures: it did not run in this daemon');
  return out.join('\n');
}

/** connected, busy, stalled, banned: <reason>, or the connection's state when it is not up. */
function peerState(p: TransferPeer): string {
  if (p.state === 'banned') return `banned: ${p.banReason ?? 'no reason given'}`;
  if (p.connection !== 'ready')
    return p.lastError === undefined ? p.connection : `${p.connection}: ${p.lastError}`;
  return p.state === 'active' ? 'connected' : p.state;
}

/** The seed's analysis: totals, pieces per peer, peers by pieces and by score band. */
function formatAnalysis(a: AssignmentAnalysis): string {
  const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
  return [
    `assignment (α=${a.alpha.toFixed(2)}, β=${a.beta.toFixed(2)}): ${a.fetchedPieces} pieces fetched, ${a.resumedPieces} kept; per peer max ${a.max}, min ${a.min}, mean ${a.mean.toFixed(2)}`,
    table(
      ['PEER', 'USER', 'SCORE', 'PIECES', 'STATE'],
      a.peers.map((p) => [
        p.peerId.slice(0, 12),
        p.userId ?? '?',
        p.score.toFixed(2),
        String(p.pieces),
        p.banReason === undefined ? p.state : `${p.state}: ${p.banReason}`,
      ]),
    ),
    'pieces per peer:',
    ...a.byPieces.map((b) => `  ${plural(b.peers, 'peer')} got ${plural(b.pieces, 'piece')}`),
    'by score:',
    ...a.byScore.map(
      (b) => `  ${b.score.toFixed(2)}: ${plural(b.peers, 'peer')}, ${plural(b.pieces, 'piece')}`,
    ),
  ].join('\n');
}
