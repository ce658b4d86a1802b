import { currentQuality, type QualityPolicy } from '../../core/index.js';
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
import { computeFileId, type Manifest, validateManifest } from '../../protocol/manifest.js';
import { isHex64, isNewFileName, isValidFileName } from '../../protocol/names.js';
import { prepared, toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import type { GroupsService } from './groups.js';
import { type PresenceService, parseAddresses } from './presence.js';
import { storedScore } from './quality.js';
import { createReadCache } from './read-cache.js';

export interface FilesService {
  share(userId: string, groupId: string, request: ShareRequest): Promise<ShareResponse>;
  list(userId: string, groupId: string): Promise<FileList>;
  get(userId: string, groupId: string, file: string): Promise<FileDetail>;
  /** The same as get(), already encoded as JSON (the manifest's stored text is spliced in, not re-encoded). */
  getJson(userId: string, groupId: string, file: string): Promise<string>;
  seeders(userId: string, groupId: string, file: string): Promise<SeederList>;
  stop(userId: string, groupId: string, file: string, peerId: string | undefined): Promise<StopShareResponse>;
  /** Resolves a file id or display name within a group (members only): FILE_NOT_FOUND otherwise. */
  resolve(userId: string, groupId: string, file: string): Promise<{ fileId: string; name: string }>;
  /** Of these file ids, those listed in some group the user belongs to (what the user may watch). */
  visible(userId: string, fileIds: string[]): Promise<Set<string>>;
}

/** Live seeders of one file in one group: shared there by the peer's user, peer connected, file announced. */
export const MAX_SEEDERS_LISTED = 200;
/** Manifests kept in memory as JSON text (a 65,536-piece manifest is about 4.4 MB). */
const MANIFEST_CACHE_BYTES = 64 * 1024 * 1024;

const invalidFileName = (name: string) =>
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
      .onConflict((oc) => oc.column('file_id').doNothing()),
  ),
  listedByName: prepared((db, p) =>
    db
      .selectFrom('group_files')
      .select(['file_id', 'name'])
      .where('group_id', '=', p(0))
      .where('name', '=', p(1)),
  ),
  listedById: prepared((db, p) =>
    db
      .selectFrom('group_files')
      .select(['file_id', 'name'])
      .where('group_id', '=', p(0))
      .where('file_id', '=', p(1)),
  ),
  insertListing: prepared((db, p) =>
    db
      .insertInto('group_files')
      .values({ group_id: p(0), file_id: p(1), name: p(2), created_by: p(3), created_at: p(4) }),
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
    const resolved = createReadCache<{ fileId: string; name: string }>(cache);
    const seederLists = createReadCache<Seeder[]>(cache);
    const sharerLists = createReadCache<string[]>(cache);
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

    const fileNotFound = (groupId: string, file: string) =>
      new CoterieError(
        'FILE_NOT_FOUND',
        `no file ${JSON.stringify(file)} in group '${groupId}': list the group's files to see what is shared`,
      );

    function resolveInGroup(groupId: string, file: string) {
      return resolved.through(`${groupId}\u0000${file}`, groupId, () => resolveInStore(groupId, file));
    }

    async function resolveInStore(groupId: string, file: string) {
      if (isHex64(file)) {
        const byId = await db
          .selectFrom('group_files')
          .select(['file_id', 'name'])
          .where('group_id', '=', groupId)
          .where('file_id', '=', file)
          .executeTakeFirst();
        if (byId !== undefined) return { fileId: byId.file_id, name: byId.name };
      }
      const byName = await db
        .selectFrom('group_files')
        .select(['file_id', 'name'])
        .where('group_id', '=', groupId)
        .where('name', '=', file)
        .executeTakeFirst();
      if (byName === undefined) throw fileNotFound(groupId, file);
      return { fileId: byName.file_id, name: byName.name };
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
        liveSeedersInStore(groupId, fileId),
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

    async function liveSeedersInStore(groupId: string, fileId: string): Promise<Seeder[]> {
      const rows = await liveShares()
        .leftJoin('peer_scores as q', 'q.peer_id', 's.peer_id')
        .select(['s.peer_id', 's.user_id', 'p.addresses', 'q.score', 'q.corrupt', 'q.updated_at'])
        .where('s.group_id', '=', groupId)
        .where('s.file_id', '=', fileId)
        .execute();
      const t = now();
      const seeders: Seeder[] = rows.map((r) => ({
        peerId: r.peer_id,
        userId: r.user_id,
        addresses: parseAddresses(r.addresses),
        ...currentQuality(storedScore(r), t, policy),
      }));
      // Best first; peers flagged for corruption last whatever their score.
      seeders.sort(
        (a, b) =>
          Number(a.flagged) - Number(b.flagged) || b.score - a.score || (a.peerId < b.peerId ? -1 : 1),
      );
      return seeders.slice(0, MAX_SEEDERS_LISTED);
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

      async resolve(userId, groupId, file) {
        await groups.requireMember(userId, groupId);
        return resolveInGroup(groupId, file);
      },

      async share(userId, groupId, request) {
        await groups.requireMember(userId, groupId);
        if (!isValidFileName(request.name)) throw invalidFileName(request.name);
        const manifest: Manifest = validateManifest(request.manifest);
        const fileId = computeFileId(manifest);
        const at = now();
        const result = await store.batchedTransaction(async (trx) => {
          await Q.insertFile.execute(trx, [
            fileId,
            manifest.size,
            manifest.pieceSize,
            manifest.pieces.length,
            JSON.stringify(manifest),
            at,
          ]);
          // Two indexed point lookups (an OR across both keys would scan the group's listing).
          const byName = (await Q.listedByName.execute(trx, [groupId, request.name])).rows[0];
          const byId = (await Q.listedById.execute(trx, [groupId, fileId])).rows[0];
          const listed = [byName, byId].filter((r) => r !== undefined);
          const sameContent = listed.find((r) => r.file_id === fileId);
          const nameOwner = listed.find((r) => r.name === request.name);
          if (nameOwner !== undefined && nameOwner.file_id !== fileId) {
            throw new CoterieError(
              'FILE_NAME_TAKEN',
              `group '${groupId}' already has a different file named ${JSON.stringify(request.name)}: share under another name`,
            );
          }
          let created = false;
          let name = request.name;
          if (sameContent !== undefined) {
            // The same bytes are one file: keep the name it is listed under, add this peer as a seeder.
            name = sameContent.name;
          } else {
            // Bidirectional controls only in names listed before they were refused.
            if (!isNewFileName(name)) throw invalidFileName(name);
            await Q.insertListing.execute(trx, [groupId, fileId, name, userId, at]);
            created = true;
          }
          await Q.upsertShare.execute(trx, [groupId, fileId, request.peerId, userId, at]);
          return { groupId, fileId, name, created };
        });
        await bus.publish({ kind: 'files_changed', groupId, fileId, at });
        await presence.announceIfPresent(userId, request.peerId, fileId);
        return result;
      },

      async list(userId, groupId) {
        await groups.requireMember(userId, groupId);
        const rows = await db
          .selectFrom('group_files as gf')
          .innerJoin('files as f', 'f.file_id', 'gf.file_id')
          .select(['gf.file_id', 'gf.name', 'gf.created_at', 'f.size', 'f.piece_size', 'f.piece_count'])
          .where('gf.group_id', '=', groupId)
          .orderBy('gf.name')
          .execute();
        const sharers = await sharersOf(groupId);
        const counts = await liveShares()
          .select((eb) => ['s.file_id', eb.fn.count<number | string>('s.peer_id').as('n')])
          .where('s.group_id', '=', groupId)
          .groupBy('s.file_id')
          .execute();
        const live = new Map(counts.map((c) => [c.file_id, toNumber(c.n)]));
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
            sharedAt: toNumber(r.created_at),
          })),
        };
      },

      async get(userId, groupId, file) {
        await groups.requireMember(userId, groupId);
        const { fileId, name } = await resolveInGroup(groupId, file);
        const manifest = JSON.parse(await manifestText(fileId)) as Manifest;
        const seeders = await liveSeeders(groupId, fileId);
        const sharers = await sharersOfFile(groupId, fileId);
        return { groupId, fileId, name, manifest, sharers, seeders };
      },

      async getJson(userId, groupId, file) {
        await groups.requireMember(userId, groupId);
        const { fileId, name } = await resolveInGroup(groupId, file);
        const manifest = await manifestText(fileId);
        const seeders = await liveSeeders(groupId, fileId);
        const sharers = await sharersOfFile(groupId, fileId);
        // The stored manifest is the tracker's own JSON.stringify of a validated manifest: safe to splice.
        return `{"groupId":${JSON.stringify(groupId)},"fileId":"${fileId}","name":${JSON.stringify(name)},"manifest":${manifest},"sharers":${JSON.stringify(sharers)},"seeders":${JSON.stringify(seeders)}}`;
      },

      async seeders(userId, groupId, file) {
        await groups.requireMember(userId, groupId);
        const { fileId } = await resolveInGroup(groupId, file);
        return { groupId, fileId, seeders: await liveSeeders(groupId, fileId) };
      },

      async stop(userId, groupId, file, peerId) {
        await groups.requireMember(userId, groupId);
        const { fileId } = await resolveInGroup(groupId, file);
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
          const left = await trx
            .selectFrom('shares')
            .select('peer_id')
            .where('group_id', '=', groupId)
            .where('file_id', '=', fileId)
            .limit(1)
            .executeTakeFirst();
          if (left === undefined) {
            await trx
              .deleteFrom('group_files')
              .where('group_id', '=', groupId)
              .where('file_id', '=', fileId)
              .execute();
          }
          return { removed: peers, listed: left !== undefined };
        });
        const at = now();
        await bus.publish({ kind: 'files_changed', groupId, fileId, at });
        for (const p of removed) await bus.publish({ kind: 'seeder_left', fileId, peerId: p, at });
        return { groupId, fileId, listed };
      },
    };
  };
}
