import type { EventBus } from '../events/index.js';

/**
 * Publishes `peer_moved` when a connected peer's addresses change (issue 19):
 * one event per peer, whatever number of files it seeds, so downloaders
 * with a link to it try the new addresses at once.
 *
 * At most one event per peer per `minGapMs`: a session that keeps sending new
 * addresses (a flapping mapping, or a hostile peer) would otherwise make
 * every tracker of the cluster query its files and push to their watchers
 * for each one. A change within the gap is published at its end, with the
 * addresses of that moment, so the last word always goes out.
 */
export interface PeerMoves {
  /** `peerId`'s addresses are now `addresses()` (read again if the event waits for the gap). */
  changed(peerId: string, addresses: () => string[]): void;
  /** The peer's session ended: nothing pending for it goes out. */
  forget(peerId: string): void;
}

export const PEER_MOVES_MIN_GAP_MS = 1_000;

export function createPeerMoves(o: {
  bus: Pick<EventBus, 'publish'>;
  now: () => number;
  onError: (err: unknown) => void;
  minGapMs?: number;
}): PeerMoves {
  const gap = o.minGapMs ?? PEER_MOVES_MIN_GAP_MS;
  const peers = new Map<string, { last: number; timer?: NodeJS.Timeout; addresses: () => string[] }>();

  const publish = (peerId: string, addresses: string[]) => {
    o.bus.publish({ kind: 'peer_moved', peerId, addresses, at: o.now() }).catch(o.onError);
  };

  return {
    changed(peerId, addresses) {
      const at = Date.now();
      const p = peers.get(peerId);
      if (p === undefined || at - p.last >= gap) {
        if (p?.timer !== undefined) clearTimeout(p.timer);
        peers.set(peerId, { last: at, addresses });
        publish(peerId, addresses());
        return;
      }
      p.addresses = addresses;
      if (p.timer !== undefined) return;
      p.timer = setTimeout(
        () => {
          p.timer = undefined;
          p.last = Date.now();
          publish(peerId, p.addresses());
        },
        p.last + gap - at,
      );
      p.timer.unref();
    },
    forget(peerId) {
      const p = peers.get(peerId);
      if (p?.timer !== undefined) clearTimeout(p.timer);
      peers.delete(peerId);
    },
  };
}
