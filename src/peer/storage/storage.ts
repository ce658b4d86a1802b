import { mkdirSync } from 'node:fs';
import type { StorageStatus } from '../../protocol/control.js';
import type { SessionEvent } from '../../protocol/session.js';
import type { CommandContext } from '../control/index.js';
import { createReplicas, type ReplicasDeps } from './replicas.js';
import { startScrub } from './scrub.js';

/** The storage commands' calls, as the command context wraps them (login, advice). */
export type StorageCommands = Pick<
  CommandContext,
  'offerStorage' | 'withdrawStorage' | 'setReplication' | 'listStorage'
>;

/** The daemon's storage peer side (issue 16): its commands, its replicas, its scrub. */
export interface StorageService extends StorageCommands {
  /** Held replicas, to announce at hello with the shares. */
  heldFileIds(): string[];
  onTrackerConnected(): void;
  onSessionEvent(e: SessionEvent): void;
  /** Undefined on a peer that neither offers storage nor holds replicas. */
  status(): StorageStatus | undefined;
  stop(): Promise<void>;
}

export interface StorageOptions extends Omit<ReplicasDeps, 'missingBackoffMs' | 'noProgressTimeoutMs'> {
  /** The zone offers name (a room, a house, a rack); '' for none. */
  zone: string;
  /** The scrub's read rate over held replicas. */
  scrubBytesPerSec: number;
  /** Rest between two scrub passes. */
  scrubPauseMs?: number;
}

export async function startStorage(options: StorageOptions): Promise<StorageService> {
  const { store, http, identity, log } = options;
  mkdirSync(options.storageDir, { recursive: true, mode: 0o700 });
  const replicas = createReplicas({ ...options });
  await replicas.restore();
  const scrub = startScrub({
    store,
    bytesPerSec: options.scrubBytesPerSec,
    onLost: (groupId, fileId, why) => replicas.lost(groupId, fileId, why),
    log,
    ...(options.scrubPauseMs === undefined ? {} : { pauseMs: options.scrubPauseMs }),
  });

  return {
    heldFileIds: () => replicas.heldFileIds(),
    onTrackerConnected: () => replicas.onTrackerConnected(),
    onSessionEvent(e) {
      if (e.type === 'replicate' || e.type === 'drop') replicas.onOrder(e);
    },
    status() {
      const s = replicas.status();
      if (s.offers.length === 0 && s.replicas === 0 && s.fetching.length === 0) return undefined;
      return { ...s, scrub: scrub.status() };
    },
    async offerStorage(groupId, quotaBytes) {
      const offer = await http.call('offerStorage', {
        params: { groupId },
        body: { peerId: identity.peerId, quotaBytes, zone: options.zone },
      });
      store.replicas.putOffer({ groupId, quotaBytes, zone: offer.zone, offeredAt: offer.offeredAt });
      return offer;
    },
    async withdrawStorage(groupId, now) {
      const res = await http.call('withdrawStorage', {
        params: { groupId },
        body: { peerId: identity.peerId, ...(now ? { now: true } : {}) },
      });
      // The tracker's drop orders free the space; the offer's quota no longer binds.
      if (res.ended) store.replicas.removeOffer(groupId);
      return res;
    },
    setReplication: (groupId, min, max) =>
      http.call('setReplication', {
        params: { groupId },
        body: { min, ...(max === undefined ? {} : { max }) },
      }),
    listStorage: (groupId) => http.call('listStorage', { params: { groupId } }),
    async stop() {
      scrub.stop();
      await replicas.stop();
    },
  };
}
