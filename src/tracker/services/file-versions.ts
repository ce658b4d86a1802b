import type { Transaction } from 'kysely';
import {
  DEFAULT_KEEP_VERSIONS,
  DEFAULT_LOCK_TTL_SECONDS,
  type DeleteResponse,
  type FileLock,
  type KeepVersionsResponse,
  type LockRequest,
  type UnlockResponse,
  type UpdateRequest,
  type UpdateResponse,
  type VersionList,
} from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { versionConflict } from '../../protocol/file-errors.js';
import type { Database } from '../store/index.js';
import { toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import {
  DELETIONS_KEPT_MS,
  fileLocked,
  leaseClock,
  type NameRow,
  nameOf,
  readNameRow,
  removeVersions,
  requireUnlockedFor,
} from './file-names.js';
import type { GroupsService } from './groups.js';
import { attachPages, checkSharedManifest } from './manifest-pages.js';
import type { PresenceService } from './presence.js';

/**
 * Versions, deletes and locks of a group's file names (issue 16; seed 004's
 * write, delete and locking). A name holds versions 1, 2, … (each a file id,
 * content-addressed); the group keeps the last `keep` of them. Every write
 * reads the name's row for update first (file-names.ts), so concurrent
 * writers of one name run one after the other on every tracker, and the
 * unique (group, name, version) makes a lost race an error, never a gap or a
 * duplicate.
 */
export interface FileVersionsService {
  update(userId: string, groupId: string, file: string, request: UpdateRequest): Promise<UpdateResponse>;
  versions(userId: string, groupId: string, file: string): Promise<VersionList>;
  remove(userId: string, groupId: string, file: string): Promise<DeleteResponse>;
  lock(userId: string, groupId: string, file: string, request: LockRequest): Promise<FileLock>;
  unlock(userId: string, groupId: string, file: string): Promise<UnlockResponse>;
  keepVersions(userId: string, groupId: string, keep: number): Promise<KeepVersionsResponse>;
  /** Deletions of the last hour in the groups `userId` belongs to (replayed to a session at hello). */
  recentDeletionsFor(
    userId: string,
  ): Promise<{ groupId: string; name: string; fileIds: string[]; at: number }[]>;
}

type Trx = Transaction<Database>;

/** File ids per `file_deleted` event: 50 × 67 bytes leaves room for a long name under NOTIFY's 8000. */
const DELETED_IDS_PER_EVENT = 50;

export function createFileVersionsService() {
  return (deps: ServiceDeps & { groups: GroupsService; presence: PresenceService }): FileVersionsService => {
    const { store, bus, now, groups, presence } = deps;
    const clock = leaseClock(store, now);
    // SQLite has no FOR UPDATE (nor needs it: one writer at a time).
    const forUpdate = store.dialect === 'postgres';

    async function keepOf(trx: Trx, groupId: string): Promise<number> {
      const g = await trx
        .selectFrom('groups')
        .select('keep_versions')
        .where('group_id', '=', groupId)
        .executeTakeFirst();
      return g?.keep_versions ?? DEFAULT_KEEP_VERSIONS;
    }

    /** Drops the versions of `name` (or of every name) older than the last `keep`; returns them by name. */
    async function applyRetention(trx: Trx, groupId: string, keep: number, at: number, name?: string) {
      const old = await trx
        .selectFrom('group_files as gf')
        .innerJoin('file_names as fn', (j) =>
          j.onRef('fn.group_id', '=', 'gf.group_id').onRef('fn.name', '=', 'gf.name'),
        )
        .select(['gf.name', 'gf.file_id'])
        .where('gf.group_id', '=', groupId)
        .where((eb) => eb('gf.version', '<=', eb('fn.current_version', '-', keep)))
        .$if(name !== undefined, (q) => q.where('gf.name', '=', name!))
        .execute();
      const byName = new Map<string, string[]>();
      for (const r of old) byName.set(r.name, [...(byName.get(r.name) ?? []), r.file_id]);
      for (const [n, ids] of byName) await removeVersions(trx, groupId, n, ids, at);
      return byName;
    }

    async function announceDropped(groupId: string, dropped: Map<string, string[]>, at: number) {
      for (const [name, fileIds] of dropped) {
        for (const fileId of fileIds) await bus.publish({ kind: 'files_changed', groupId, fileId, at });
        // In slices: a PostgreSQL NOTIFY payload is capped at 8000 bytes (a file id is 64).
        for (let i = 0; i < fileIds.length; i += DELETED_IDS_PER_EVENT) {
          await bus.publish({
            kind: 'file_deleted',
            groupId,
            name,
            fileIds: fileIds.slice(i, i + DELETED_IDS_PER_EVENT),
            at,
          });
        }
      }
    }

    /** Runs `fn` on the name's row, read for update, in one transaction. */
    function withName<T>(
      groupId: string,
      file: string,
      fn: (trx: Trx, row: NameRow, t: number) => Promise<T>,
    ) {
      return store.transaction(async (trx) => {
        const t = await clock(trx);
        const row = await readNameRow(trx, groupId, await nameOf(trx, groupId, file), t, forUpdate);
        return fn(trx, row, t);
      });
    }

    return {
      async update(userId, groupId, file, request) {
        await groups.requireMember(userId, groupId);
        const manifest = await checkSharedManifest(store.db, request.manifest);
        const fileId = manifest.fileId;
        const at = now();
        let dropped = new Map<string, string[]>();
        const result = await withName(groupId, file, async (trx, row) => {
          requireUnlockedFor(row, userId);
          const { name, currentVersion } = row;
          if (request.ifVersion !== undefined && request.ifVersion !== currentVersion) {
            throw versionConflict(name, currentVersion, request.ifVersion);
          }
          await trx
            .insertInto('files')
            .values({
              file_id: fileId,
              size: manifest.size,
              piece_size: manifest.pieceSize,
              piece_count: manifest.pieceCount,
              manifest: manifest.json,
              created_at: at,
            })
            // Listed again: the GC's count towards removing it starts over (file-gc.ts).
            .onConflict((oc) => oc.column('file_id').doUpdateSet({ unlisted_at: null }))
            .execute();
          await attachPages(trx, fileId, manifest.pages);
          const listed = await trx
            .selectFrom('group_files')
            .select(['name', 'version'])
            .where('group_id', '=', groupId)
            .where('file_id', '=', fileId)
            .executeTakeFirst();
          let version = currentVersion + 1;
          if (listed !== undefined) {
            if (listed.name !== name) {
              throw new CoterieError(
                'FILE_NAME_TAKEN',
                `this content is already listed in group '${groupId}' as ${JSON.stringify(listed.name).slice(0, 80)}`,
              );
            }
            if (toNumber(listed.version) !== currentVersion) {
              throw new CoterieError(
                'VERSION_CONFLICT',
                `this content is already version ${toNumber(listed.version)} of ${JSON.stringify(name).slice(0, 80)}: a new version needs new content`,
                { details: { currentVersion } },
              );
            }
            version = currentVersion;
          } else {
            await trx
              .insertInto('group_files')
              .values({
                group_id: groupId,
                file_id: fileId,
                name,
                version,
                created_by: userId,
                created_at: at,
              })
              .execute();
            await trx
              .updateTable('file_names')
              .set({ current_version: version })
              .where('group_id', '=', groupId)
              .where('name', '=', name)
              .execute();
            await trx
              .deleteFrom('file_deletions')
              .where('group_id', '=', groupId)
              .where('file_id', '=', fileId)
              .execute();
            dropped = await applyRetention(trx, groupId, await keepOf(trx, groupId), at, name);
          }
          await trx
            .insertInto('shares')
            .values({
              group_id: groupId,
              file_id: fileId,
              peer_id: request.peerId,
              user_id: userId,
              created_at: at,
            })
            .onConflict((oc) =>
              oc.columns(['group_id', 'file_id', 'peer_id']).doUpdateSet({ user_id: userId }),
            )
            .execute();
          return { groupId, name, fileId, version, created: listed === undefined };
        });
        await bus.publish({ kind: 'files_changed', groupId, fileId, at });
        await announceDropped(groupId, dropped, at);
        await presence.announceIfPresent(userId, request.peerId, fileId);
        return { ...result, dropped: [...dropped.values()].flat() };
      },

      async versions(userId, groupId, file) {
        await groups.requireMember(userId, groupId);
        return store.transaction(async (trx) => {
          const t = await clock(trx);
          const row = await readNameRow(trx, groupId, await nameOf(trx, groupId, file), t, false);
          const rows = await trx
            .selectFrom('group_files as gf')
            .innerJoin('files as f', 'f.file_id', 'gf.file_id')
            .select(['gf.version', 'gf.file_id', 'f.size', 'gf.created_by', 'gf.created_at'])
            .where('gf.group_id', '=', groupId)
            .where('gf.name', '=', row.name)
            .orderBy('gf.version', 'desc')
            .execute();
          return {
            groupId,
            name: row.name,
            currentVersion: row.currentVersion,
            keep: await keepOf(trx, groupId),
            versions: rows.map((r) => ({
              version: toNumber(r.version),
              fileId: r.file_id,
              size: toNumber(r.size),
              author: r.created_by,
              createdAt: toNumber(r.created_at),
            })),
            ...(row.lock === undefined ? {} : { lock: row.lock }),
          };
        });
      },

      async remove(userId, groupId, file) {
        const { owner } = await groups.requireMember(userId, groupId);
        const at = now();
        const result = await withName(groupId, file, async (trx, row) => {
          requireUnlockedFor(row, userId);
          const rows = await trx
            .selectFrom('group_files')
            .select(['file_id', 'created_by'])
            .where('group_id', '=', groupId)
            .where('name', '=', row.name)
            .execute();
          const author = row.createdBy === userId || rows.some((r) => r.created_by === userId);
          if (!author && owner !== userId) {
            throw new CoterieError(
              'NOT_AUTHOR',
              `only an author of ${JSON.stringify(row.name).slice(0, 80)} or the owner of group '${groupId}' ('${owner}') may delete it`,
            );
          }
          const fileIds = rows.map((r) => r.file_id);
          await removeVersions(trx, groupId, row.name, fileIds, at);
          await trx
            .deleteFrom('file_names')
            .where('group_id', '=', groupId)
            .where('name', '=', row.name)
            .execute();
          return { groupId, name: row.name, fileIds };
        });
        await announceDropped(groupId, new Map([[result.name, result.fileIds]]), at);
        return result;
      },

      async lock(userId, groupId, file, request) {
        await groups.requireMember(userId, groupId);
        if (request.peerId !== undefined) {
          const present = await store.db
            .selectFrom('presence')
            .select('peer_id')
            .where('peer_id', '=', request.peerId)
            .where('user_id', '=', userId)
            .executeTakeFirst();
          if (present === undefined) {
            throw new CoterieError(
              'NOT_FOUND',
              `your peer ${request.peerId.slice(0, 12)}… has no session with the tracker: start it (or lock without a peer)`,
            );
          }
        }
        return withName(groupId, file, async (trx, row, t) => {
          requireUnlockedFor(row, userId);
          const expiresAt = t + (request.ttlSeconds ?? DEFAULT_LOCK_TTL_SECONDS) * 1000;
          await trx
            .updateTable('file_names')
            .set({ lock_holder: userId, lock_peer: request.peerId ?? null, lock_expires_at: expiresAt })
            .where('group_id', '=', groupId)
            .where('name', '=', row.name)
            .execute();
          return {
            groupId,
            name: row.name,
            holder: userId,
            ...(request.peerId === undefined ? {} : { peerId: request.peerId }),
            expiresAt,
          };
        });
      },

      async unlock(userId, groupId, file) {
        const { owner } = await groups.requireMember(userId, groupId);
        return withName(groupId, file, async (trx, row) => {
          if (row.lock !== undefined && row.lock.holder !== userId && owner !== userId)
            throw fileLocked(row.lock);
          await trx
            .updateTable('file_names')
            .set({ lock_holder: null, lock_peer: null, lock_expires_at: null })
            .where('group_id', '=', groupId)
            .where('name', '=', row.name)
            .execute();
          return { groupId, name: row.name, released: row.lock !== undefined };
        });
      },

      async keepVersions(userId, groupId, keep) {
        const { owner } = await groups.requireMember(userId, groupId);
        if (owner !== userId) {
          throw new CoterieError(
            'NOT_OWNER',
            `only the owner of group '${groupId}' ('${owner}') may do this`,
          );
        }
        const at = now();
        const dropped = await store.transaction(async (trx) => {
          await trx
            .updateTable('groups')
            .set({ keep_versions: keep })
            .where('group_id', '=', groupId)
            .execute();
          return applyRetention(trx, groupId, keep, at);
        });
        await announceDropped(groupId, dropped, at);
        return { groupId, keep, dropped: [...dropped.values()].flat() };
      },

      async recentDeletionsFor(userId) {
        const rows = await store.db
          .selectFrom('file_deletions as d')
          .innerJoin('memberships as m', 'm.group_id', 'd.group_id')
          .select(['d.group_id', 'd.name', 'd.file_id', 'd.deleted_at'])
          .where('m.user_id', '=', userId)
          .where('d.deleted_at', '>', now() - DELETIONS_KEPT_MS)
          .orderBy('d.deleted_at')
          .limit(1000)
          .execute();
        return rows.map((r) => ({
          groupId: r.group_id,
          name: r.name,
          fileIds: [r.file_id],
          at: toNumber(r.deleted_at),
        }));
      },
    };
  };
}
