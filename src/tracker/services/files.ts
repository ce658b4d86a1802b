import type { QualityPolicy } from '../../core/index.js';
import type {
  FileDetail,
  FileList,
  Seeder,
  SeederList,
  ShareRequest,
  ShareResponse,
  StopShareResponse,
} from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { isNewFileName, isValidFileName } from '../../protocol/names.js';
import { prepared, toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import { listCurrentVersions, lockShown } from './file-listing.js';
import { dropUnkeptNames, findListed, type Listed } from './file-names.js';
import type { GroupsService } from './groups.js';
import { createLookupAnswers } from './lookup-answers.js';
import { attachPages, checkSharedManifest } from './manifest-pages.js';
import type { PresenceService } from './presence.js';
import { createReadCache } from './read-cache.js';
import { liveSeedersInStore } from './seeders-query.js';

export interface FilesService {
  share(userId: string, groupId: string, request: ShareRequest): Promise<ShareResponse>;
  list(userId: string, groupId: string): Promise<FileList>;
  /** `version`: that retained version of the name (the current one by default). */
  get(userId: string, groupId: string, file: string, version?: number): Promise<FileDetail>;
  /** The same as get(), already encoded as JSON (the manifest's stored text is spliced in, not re-encoded). */
  getJson(userId: string, groupId: string, file: string, version?: number): Promise<string>;
  seeders(userId: string, groupId: string, file: string, version?: number): Promise<SeederList>;
  stop(userId: string, groupId: string, file: string, peerId: string | undefined): Promise<StopShareResponse>;
  /**
   * Resolves a file id or display name (and version) within a group (members
   * only): FILE_NOT_FOUND or VERSION_NOT_FOUND otherwise.
   */
  resolve(userId: string, groupId: string, file: string, version?: number): Promise<Listed>;
  /** Of these file ids, those listed in some group the user belongs to (what the user may watch). */
  visible(userId: string, fileIds: string[]): Promise<Set<string>>;
}

/** Manifests kept in memory as JSON text (a 65,536-piece file's is about 4.4 MB; a folder's root, small). */
const MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;
/** Lookup answers kept as JSON text (each holds its manifest again: bounded on its own). */
const ANSWER_CACHE_BYTES = 32 * 1024 * 1024;

export const invalidFileName = (name: string) =>
  new CoterieError(
    'INVALID_NAME',
    `invalid file name ${JSON.stringify(name).slice(0, 80)}: use 1 to 255 printable characters without '/', '\\' or bidirectional controls`,
  );

/** The share path's queries, built once (see store/prepared.ts). */
const Q = {
  insertFile: prepared((db, p) =>
    db
      .insertInto('files')
      .values({
        file_id: p(0),
        size: p(1),
        piece_size: p(2),
        piece_count: p(3),
        manifest: p(4),
        created_at: p(5),
      })
      // Listed again: the GC's count towards removing it starts over (file-gc.ts). Always a write, so
      // that a sweep marking it concurrently conflicts with this on the row instead of missing it.
      .onConflict((oc) => oc.column('file_id').doUpdateSet({ unlisted_at: null })),
  ),
  nameListed: prepared((db, p) =>
    db.selectFrom('file_names').select('name').where('group_id', '=', p(0)).where('name', '=', p(1)),
  ),
  listedById: prepared((db, p) =>
    db
      .selectFrom('group_files')
      .select(['file_id', 'name', 'version'])
      .where('group_id', '=', p(0))
      .where('file_id', '=', p(1)),
  ),
  /** A name's first share is its version 1. */
  insertListing: prepared((db, p) =>
    db
      .insertInto('group_files')
      .values({ group_id: p(0), file_id: p(1), name: p(2), version: 1, created_by: p(3), created_at: p(4) }),
  ),
  insertName: prepared((db, p) =>
    db
      .insertInto('file_names')
      .values({ group_id: p(0), name: p(1), current_version: 1, created_by: p(2), created_at: p(3) }),
  ),
  /** The file id is listed again: it is no longer one of the deletions replayed at hello. */
  undelete: prepared((db, p) =>
    db.deleteFrom('file_deletions').where('group_id', '=', p(0)).where('file_id', '=', p(1)),
  ),
  upsertShare: prepared((db, p) =>
    db
      .insertInto('shares')
      .values({ group_id: p(0), file_id: p(1), peer_id: p(2), user_id: p(3), created_at: p(4) })
      .onConflict((oc) => oc.columns(['group_id', 'file_id', 'peer_id']).doUpdateSet({ user_id: p(3) })),
  ),
};

export function createFilesService(
  policy: QualityPolicy,
  cacheOptions: { readCacheMs: number; readCacheEntries: number } = { readCacheMs: 0, readCacheEntries: 0 },
) {
  return (deps: ServiceDeps & { groups: GroupsService; presence: PresenceService }): FilesService => {
    const { store, bus, now, groups, presence } = deps;
    const db = store.db;
    const cache = { ttlMs: cacheOptions.readCacheMs, maxEntries: cacheOptions.readCacheEntries, now };
    // (group, file id or name) → the listed file, tagged by group; (group, file id) → live seeders, tagged by file.
    const resolved = createReadCache<Listed>(cache);
    const seederLists = createReadCache<Seeder[]>(cache);
    const sharerLists = createReadCache<string[]>(cache);
    // Lookup answers as JSON text, reused while the three caches above hold the parts they came from.
    const answers = createLookupAnswers({
      maxEntries: cacheOptions.readCacheEntries,
      maxBytes: ANSWER_CACHE_BYTES,
    });
    // Manifests never change (the file id is their hash): keep recent ones as JSON text, bounded in bytes.
    const manifests = new Map<string, string>();
    let manifestBytes = 0;
    bus.subscribe((e) => {
      switch (e.kind) {
        case 'seeder_appeared':
        case 'seeder_left':
          seederLists.invalidateTag(e.fileId);
          break;
        case 'files_changed':
          resolved.invalidateTag(e.groupId);
          seederLists.invalidateTag(e.fileId);
          sharerLists.invalidateTag(e.fileId);
          break;
        case 'membership_changed':
          // A member leaving drops their shares in the group: which files is not in the event.
          resolved.invalidateTag(e.groupId);
          seederLists.clear();
          sharerLists.clear();
          break;
        case 'scores_changed':
          seederLists.clear();
          break;
        case 'events_lost':
          resolved.clear();
          seederLists.clear();
          sharerLists.clear();
          break;
      }
    });

    function resolveInGroup(groupId: string, file: string, version?: number) {
      return resolved.through(`${groupId}\u0000${file}\u0000${version ?? ''}`, groupId, () =>
        findListed(db, groupId, file, version),
      );
    }

    async function sharersOf(groupId: string, fileId?: string) {
      let q = db
        .selectFrom('shares')
        .select(['file_id', 'user_id'])
        .distinct()
        .where('group_id', '=', groupId);
      if (fileId !== undefined) q = q.where('file_id', '=', fileId);
      const rows = await q.orderBy('user_id').execute();
      const map = new Map<string, string[]>();
      for (const r of rows) {
        const list = map.get(r.file_id);
        if (list === undefined) map.set(r.file_id, [r.user_id]);
        else list.push(r.user_id);
      }
      return map;
    }

    async function manifestText(fileId: string): Promise<string> {
      const hit = manifests.get(fileId);
      if (hit !== undefined) return hit;
      const f = await db
        .selectFrom('files')
        .select('manifest')
        .where('file_id', '=', fileId)
        .executeTakeFirstOrThrow();
      manifests.set(fileId, f.manifest);
      manifestBytes += f.manifest.length;
      for (const [k, v] of manifests) {
        if (manifestBytes <= MANIFEST_CACHE_BYTES) break;
        manifests.delete(k);
        manifestBytes -= v.length;
      }
      return f.manifest;
    }

    function sharersOfFile(groupId: string, fileId: string): Promise<string[]> {
      return sharerLists.through(
        `${groupId}\u0000${fileId}`,
        fileId,
        async () => (await sharersOf(groupId, fileId)).get(fileId) ?? [],
      );
    }

    function liveSeeders(groupId: string, fileId: string): Promise<Seeder[]> {
      return seederLists.through(`${groupId}\u0000${fileId}`, fileId, () =>
        liveSeedersInStore(db, groupId, fileId, now(), policy),
      );
    }

    /** The shares whose peer is online as their user and announces the file: who can seed now. */
    function liveShares() {
      return db
        .selectFrom('shares as s')
        .innerJoin('presence as p', (j) =>
          j.onRef('p.peer_id', '=', 's.peer_id').onRef('p.user_id', '=', 's.user_id'),
        )
        .innerJoin('presence_files as pf', (j) =>
          j.onRef('pf.peer_id', '=', 's.peer_id').onRef('pf.file_id', '=', 's.file_id'),
        );
    }

    /**
     * Per file of the group, the members connected now who announce it without sharing it or
     * holding a replica of it for the group: downloaders serving their verified pieces.
     */
    async function partialSeederCounts(groupId: string): Promise<Map<string, number>> {
      const rows = await db
        .selectFrom('presence_files as pf')
        .innerJoin('presence as p', 'p.peer_id', 'pf.peer_id')
        .innerJoin('memberships as m', (j) =>
          j.onRef('m.user_id', '=', 'p.user_id').on('m.group_id', '=', groupId),
        )
        .select((eb) => ['pf.file_id', eb.fn.count<number | string>('pf.peer_id').distinct().as('n')])
        .where(
          'pf.file_id',
          'in',
          db.selectFrom('group_files').select('file_id').where('group_id', '=', groupId),
        )
        // …neither a sharer of it here nor a storage peer holding a replica of it for the group.
        .where(({ not, exists, selectFrom }) =>
          not(
            exists(
              selectFrom('shares as s')
                .select('s.peer_id')
                .where('s.group_id', '=', groupId)
                .whereRef('s.file_id', '=', 'pf.file_id')
                .whereRef('s.peer_id', '=', 'pf.peer_id')
                .unionAll(
                  selectFrom('replicas as r')
                    .select('r.peer_id')
                    .where('r.group_id', '=', groupId)
                    .where('r.state', '=', 'held')
                    .whereRef('r.file_id', '=', 'pf.file_id')
                    .whereRef('r.peer_id', '=', 'pf.peer_id'),
                ),
            ),
          ),
        )
        .groupBy('pf.file_id')
        .execute();
      return new Map(rows.map((r) => [r.file_id, toNumber(r.n)]));
    }

    return {
      async visible(userId, fileIds) {
        const out = new Set<string>();
        const unique = [...new Set(fileIds)];
        // Batches bound the number of bound variables per statement (SQLite and PostgreSQL limits).
        for (let i = 0; i < unique.length; i += 1000) {
          const rows = await db
            .selectFrom('group_files as gf')
            .innerJoin('memberships as m', (j) =>
              j.onRef('m.group_id', '=', 'gf.group_id').on('m.user_id', '=', userId),
            )
            .select('gf.file_id')
            .distinct()
            .where('gf.file_id', 'in', unique.slice(i, i + 1000))
            .execute();
          for (const r of rows) out.add(r.file_id);
        }
        return out;
      },

      async resolve(userId, groupId, file, version) {
        await groups.requireMember(userId, groupId);
        return resolveInGroup(groupId, file, version);
      },

      async share(userId, groupId, request) {
        await groups.requireMember(userId, groupId);
        if (!isValidFileName(request.name)) throw invalidFileName(request.name);
        const manifest = await checkSharedManifest(db, request.manifest);
        const fileId = manifest.fileId;
        const at = now();
        const result = await store.batchedTransaction(async (trx) => {
          await Q.insertFile.execute(trx, [
            fileId,
            manifest.size,
            manifest.pieceSize,
            manifest.pieceCount,
            manifest.json,
            at,
          ]);
          await attachPages(trx, fileId, manifest.pages);
          // Two indexed point lookups (an OR across both keys would scan the group's listing).
          const nameTaken = (await Q.nameListed.execute(trx, [groupId, request.name])).rows[0] !== undefined;
          const sameContent = (await Q.listedById.execute(trx, [groupId, fileId])).rows[0];
          if (nameTaken && sameContent?.name !== request.name) {
            throw new CoterieError(
              'FILE_NAME_TAKEN',
              `group '${groupId}' already has a different file named ${JSON.stringify(request.name)}: share under another name, or update it as a new version`,
            );
          }
          let created = false;
          let name = request.name;
          let version = 1;
          if (sameContent !== undefined) {
            // The same bytes are one file: keep the name and version it is listed as, add this peer as a seeder.
            name = sameContent.name;
            version = toNumber(sameContent.version);
          } else {
            // Bidirectional controls only in names listed before they were refused.
            if (!isNewFileName(name)) throw invalidFileName(name);
            await Q.insertName.execute(trx, [groupId, name, userId, at]);
            await Q.insertListing.execute(trx, [groupId, fileId, name, userId, at]);
            await Q.undelete.execute(trx, [groupId, fileId]);
            created = true;
          }
          await Q.upsertShare.execute(trx, [groupId, fileId, request.peerId, userId, at]);
          return { groupId, fileId, name, created, version };
        });
        await bus.publish({ kind: 'files_changed', groupId, fileId, at });
        await presence.announceIfPresent(userId, request.peerId, fileId);
        return result;
      },

      async list(userId, groupId) {
        await groups.requireMember(userId, groupId);
        const rows = await listCurrentVersions(db, groupId);
        const sharers = await sharersOf(groupId);
        const counts = await liveShares()
          .select((eb) => ['s.file_id', eb.fn.count<number | string>('s.peer_id').as('n')])
          .where('s.group_id', '=', groupId)
          .groupBy('s.file_id')
          .execute();
        const live = new Map(counts.map((c) => [c.file_id, toNumber(c.n)]));
        const partial = await partialSeederCounts(groupId);
        return {
          groupId,
          files: rows.map((r) => ({
            fileId: r.file_id,
            name: r.name,
            size: toNumber(r.size),
            pieceSize: r.piece_size,
            pieceCount: r.piece_count,
            sharers: sharers.get(r.file_id) ?? [],
            seeders: live.get(r.file_id) ?? 0,
            partialSeeders: partial.get(r.file_id) ?? 0,
            sharedAt: toNumber(r.created_at),
            version: toNumber(r.version),
            ...lockShown(r, now()),
          })),
        };
      },

      async get(userId, groupId, file, v) {
        await groups.requireMember(userId, groupId);
        const { fileId, name, version } = await resolveInGroup(groupId, file, v);
        const manifest = JSON.parse(await manifestText(fileId)) as FileDetail['manifest'];
        const seeders = await liveSeeders(groupId, fileId);
        const sharers = await sharersOfFile(groupId, fileId);
        return { groupId, fileId, name, version, manifest, sharers, seeders };
      },

      async getJson(userId, groupId, file, v) {
        await groups.requireMember(userId, groupId);
        // Cache hits are read synchronously: an awaited read-through costs a turn of microtasks each.
        const asked = `${groupId}\u0000${file}\u0000${v ?? ''}`;
        const listed = resolved.get(asked) ?? (await resolveInGroup(groupId, file, v));
        const { fileId, name, version } = listed;
        const key = `${groupId}\u0000${fileId}`;
        const seeders = seederLists.get(key) ?? (await liveSeeders(groupId, fileId));
        const sharers = sharerLists.get(key) ?? (await sharersOfFile(groupId, fileId));
        const parts = [listed, seeders, sharers] as const;
        const built = answers.get(asked, parts);
        if (built !== undefined) return built;
        const manifest = await manifestText(fileId);
        // The stored manifest is the tracker's own JSON.stringify of a validated manifest: safe to splice.
        const json = `{"groupId":${JSON.stringify(groupId)},"fileId":"${fileId}","name":${JSON.stringify(name)},"version":${version},"manifest":${manifest},"sharers":${JSON.stringify(sharers)},"seeders":${JSON.stringify(seeders)}}`;
        answers.set(asked, parts, json);
        return json;
      },

      async seeders(userId, groupId, file, version) {
        await groups.requireMember(userId, groupId);
        const { fileId } = await resolveInGroup(groupId, file, version);
        return { groupId, fileId, seeders: await liveSeeders(groupId, fileId) };
      },

      async stop(userId, groupId, file, peerId) {
        await groups.requireMember(userId, groupId);
        const { fileId, name } = await resolveInGroup(groupId, file);
        const { removed, listed } = await store.transaction(async (trx) => {
          let sel = trx
            .selectFrom('shares')
            .select('peer_id')
            .where('group_id', '=', groupId)
            .where('file_id', '=', fileId)
            .where('user_id', '=', userId);
          if (peerId !== undefined) sel = sel.where('peer_id', '=', peerId);
          const peers = (await sel.execute()).map((r) => r.peer_id);
          if (peers.length === 0) {
            throw new CoterieError(
              'NOT_SHARING',
              `you do not share ${fileId.slice(0, 12)}… in group '${groupId}'${peerId ? ' from that peer' : ''}`,
            );
          }
          await trx
            .deleteFrom('shares')
            .where('group_id', '=', groupId)
            .where('file_id', '=', fileId)
            .where('peer_id', 'in', peers)
            .execute();
          // The name leaves the listing when no version of it is shared or held by a storage peer any more.
          await dropUnkeptNames(trx, groupId, [name]);
          const listed = (await Q.nameListed.execute(trx, [groupId, name])).rows[0] !== undefined;
          return { removed: peers, listed };
        });
        const at = now();
        await bus.publish({ kind: 'files_changed', groupId, fileId, at });
        for (const p of removed) await bus.publish({ kind: 'seeder_left', fileId, peerId: p, at });
        return { groupId, fileId, listed };
      },
    };
  };
}
