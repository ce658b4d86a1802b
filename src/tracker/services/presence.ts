import { CoterieError } from '../../protocol/errors.js';
import { prepared } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import { createPeerMoves } from './peer-moves.js';

/**
 * Who is connected right now, and which files each connected peer serves.
 * Lives in the store (not in memory) so that trackers sharing one PostgreSQL
 * see each other's seeders. Rows carry the session and tracker that wrote
 * them: a replaced or dead session removes only its own rows, and a tracker
 * clears its own leftovers when it starts.
 */
export interface PeerSessionInfo {
  sessionId: string;
  userId: string;
  peerId: string;
  addresses: string[];
}

export interface PresenceService {
  /** Registers (or takes over) a peer; announces `seeding`. Returns the session id it replaced, if any. */
  register(info: PeerSessionInfo, seeding: string[]): Promise<{ replacedSessionId: string | undefined }>;
  announce(info: PeerSessionInfo, files: string[]): Promise<void>;
  unannounce(info: PeerSessionInfo, files: string[]): Promise<void>;
  /** New addresses for the session's peer; a change is published (`peer_moved`, see peer-moves.ts). */
  setAddresses(info: PeerSessionInfo, addresses: string[]): Promise<void>;
  /** The files `peerId` seeds now, from any tracker of the cluster. */
  seededBy(peerId: string): Promise<string[]>;
  /** The connected seeders of `fileIds` now, from any tracker of the cluster (at most 1,000 files). */
  seedersOf(
    fileIds: string[],
  ): Promise<{ fileId: string; peerId: string; userId: string; addresses: string[] }[]>;
  /** The session ended (closed or dead): its peer stops being a seeder at once. */
  unregister(info: PeerSessionInfo): Promise<void>;
  /** A share made over HTTP by a connected peer counts as an announce from its session. */
  announceIfPresent(userId: string, peerId: string, fileId: string): Promise<void>;
  /** Deletes every presence row this tracker wrote (at start: rows left by a crash). */
  clearTracker(trackerId: string): Promise<number>;
}

/** SQLite allows 32,766 bound variables per statement; PostgreSQL 65,535. Batches stay well under both. */
const INSERT_BATCH_ROWS = 1000;

/** Run on every share: built once (see store/prepared.ts). */
const PRESENT = prepared((db, p) =>
  db
    .selectFrom('presence')
    .select(['session_id', 'addresses', 'tracker_id'])
    .where('peer_id', '=', p(0))
    .where('user_id', '=', p(1)),
);

export function createPresenceService(trackerId: string) {
  return (deps: ServiceDeps): PresenceService => {
    const { store, bus, now } = deps;
    const db = store.db;
    // A publish that fails costs the push only: downloaders read the addresses at their next listing.
    const moves = createPeerMoves({ bus, now, onError: () => {} });

    async function addFiles(info: PeerSessionInfo, files: string[]) {
      const unique = [...new Set(files)];
      for (let i = 0; i < unique.length; i += INSERT_BATCH_ROWS) {
        const rows = unique.slice(i, i + INSERT_BATCH_ROWS).map((fileId) => ({
          peer_id: info.peerId,
          file_id: fileId,
          session_id: info.sessionId,
          tracker_id: trackerId,
        }));
        await db
          .insertInto('presence_files')
          .values(rows)
          .onConflict((oc) =>
            oc
              .columns(['peer_id', 'file_id'])
              .doUpdateSet({ session_id: info.sessionId, tracker_id: trackerId }),
          )
          .execute();
      }
      const at = now();
      for (const fileId of unique) {
        await bus.publish({
          kind: 'seeder_appeared',
          fileId,
          peerId: info.peerId,
          userId: info.userId,
          addresses: info.addresses,
          at,
        });
      }
    }

    async function removeFiles(peerId: string, files: string[], sessionId?: string) {
      const unique = [...new Set(files)];
      for (let i = 0; i < unique.length; i += INSERT_BATCH_ROWS) {
        let q = db
          .deleteFrom('presence_files')
          .where('peer_id', '=', peerId)
          .where('file_id', 'in', unique.slice(i, i + INSERT_BATCH_ROWS));
        if (sessionId !== undefined) q = q.where('session_id', '=', sessionId);
        await q.execute();
      }
      const at = now();
      for (const fileId of unique) await bus.publish({ kind: 'seeder_left', fileId, peerId, at });
    }

    return {
      async register(info, seeding) {
        const existing = await db
          .selectFrom('presence')
          .select(['user_id', 'session_id'])
          .where('peer_id', '=', info.peerId)
          .executeTakeFirst();
        if (existing !== undefined && existing.user_id !== info.userId) {
          throw new CoterieError(
            'PEER_MISMATCH',
            `peer ${info.peerId.slice(0, 12)}… is connected as another user: log that session out first`,
          );
        }
        const row = {
          peer_id: info.peerId,
          user_id: info.userId,
          session_id: info.sessionId,
          tracker_id: trackerId,
          addresses: JSON.stringify(info.addresses),
          connected_at: now(),
        };
        const previousFiles = existing
          ? (
              await db
                .selectFrom('presence_files')
                .select('file_id')
                .where('peer_id', '=', info.peerId)
                .execute()
            ).map((r) => r.file_id)
          : [];
        await db
          .insertInto('presence')
          .values(row)
          .onConflict((oc) =>
            oc.column('peer_id').doUpdateSet({
              user_id: row.user_id,
              session_id: row.session_id,
              tracker_id: row.tracker_id,
              addresses: row.addresses,
              connected_at: row.connected_at,
            }),
          )
          .execute();
        const keep = new Set(seeding);
        const gone = previousFiles.filter((f) => !keep.has(f));
        if (gone.length > 0) await removeFiles(info.peerId, gone);
        if (seeding.length > 0) await addFiles(info, seeding);
        const replaced = existing && existing.session_id !== info.sessionId ? existing.session_id : undefined;
        if (replaced !== undefined) {
          await bus.publish({ kind: 'peer_replaced', peerId: info.peerId, sessionId: replaced, at: now() });
        }
        return { replacedSessionId: replaced };
      },

      async announce(info, files) {
        if (files.length > 0) await addFiles(info, files);
      },

      async unannounce(info, files) {
        if (files.length > 0) await removeFiles(info.peerId, files, info.sessionId);
      },

      async setAddresses(info, addresses) {
        const changed = addresses.join(' ') !== info.addresses.join(' ');
        info.addresses = addresses;
        await db
          .updateTable('presence')
          .set({ addresses: JSON.stringify(addresses) })
          .where('peer_id', '=', info.peerId)
          .where('session_id', '=', info.sessionId)
          .execute();
        if (changed) moves.changed(info.peerId, () => info.addresses);
      },

      async seededBy(peerId) {
        const rows = await db
          .selectFrom('presence_files')
          .select('file_id')
          .where('peer_id', '=', peerId)
          .execute();
        return rows.map((r) => r.file_id);
      },

      async seedersOf(fileIds) {
        if (fileIds.length === 0) return [];
        const rows = await db
          .selectFrom('presence_files as f')
          .innerJoin('presence as p', (j) =>
            j.onRef('p.peer_id', '=', 'f.peer_id').onRef('p.session_id', '=', 'f.session_id'),
          )
          .select(['f.file_id', 'p.peer_id', 'p.user_id', 'p.addresses'])
          .where('f.file_id', 'in', fileIds.slice(0, INSERT_BATCH_ROWS))
          .execute();
        return rows.map((r) => ({
          fileId: r.file_id,
          peerId: r.peer_id,
          userId: r.user_id,
          addresses: parseAddresses(r.addresses),
        }));
      },

      async unregister(info) {
        moves.forget(info.peerId);
        const files = (
          await db
            .selectFrom('presence_files')
            .select('file_id')
            .where('peer_id', '=', info.peerId)
            .where('session_id', '=', info.sessionId)
            .execute()
        ).map((r) => r.file_id);
        await db
          .deleteFrom('presence_files')
          .where('peer_id', '=', info.peerId)
          .where('session_id', '=', info.sessionId)
          .execute();
        await db
          .deleteFrom('presence')
          .where('peer_id', '=', info.peerId)
          .where('session_id', '=', info.sessionId)
          .execute();
        const at = now();
        for (const fileId of files)
          await bus.publish({ kind: 'seeder_left', fileId, peerId: info.peerId, at });
      },

      async announceIfPresent(userId, peerId, fileId) {
        const p = (await PRESENT.execute(db, [peerId, userId])).rows[0];
        if (p === undefined) return;
        const r = await db
          .insertInto('presence_files')
          .values({ peer_id: peerId, file_id: fileId, session_id: p.session_id, tracker_id: p.tracker_id })
          .onConflict((oc) => oc.columns(['peer_id', 'file_id']).doNothing())
          .executeTakeFirst();
        if (Number(r.numInsertedOrUpdatedRows ?? 0) > 0) {
          await bus.publish({
            kind: 'seeder_appeared',
            fileId,
            peerId,
            userId,
            addresses: parseAddresses(p.addresses),
            at: now(),
          });
        }
      },

      async clearTracker(id) {
        await db.deleteFrom('presence_files').where('tracker_id', '=', id).execute();
        const r = await db.deleteFrom('presence').where('tracker_id', '=', id).executeTakeFirst();
        return Number(r.numDeletedRows);
      },
    };
  };
}

export function parseAddresses(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((a): a is string => typeof a === 'string') : [];
  } catch {
    return [];
  }
}
