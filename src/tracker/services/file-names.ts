import type { Kysely, Transaction } from 'kysely';
import type { FileLock } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { fileLocked } from '../../protocol/file-errors.js';
import { isHex64 } from '../../protocol/names.js';
import { type Database, databaseNowMs, type Store, toNumber } from '../store/index.js';

/**
 * A listed name's row (file_names), read for a write: on PostgreSQL with
 * SELECT … FOR UPDATE, so that every write to one name (update, delete,
 * lock, unlock) waits for the one before it to commit, whichever tracker runs
 * it; SQLite has one writer at a time anyway.
 *
 * Locks are leases held in that row. One is held while its expiry is ahead
 * and, when it names the holder's peer, while that peer has a session
 * anywhere in the cluster (a presence row). So a lock ends with its holder's
 * peer by the same paths that end presence: the session cut by the heartbeat
 * (interval + timeout, under two heartbeats), a tracker's restart
 * (clearTracker), a dead tracker's rows reaped by the others (cluster.ts):
 * no second clean-up to keep in step with them. A peer that fails over keeps
 * its lock: its presence row moves with it.
 *
 * Renewal is the holder's to ask (a `lock` call by the holder sets a new
 * expiry): only the holder knows it still wants the lock, and a tracker that
 * renewed for every live session would turn a lock forgotten on a laptop that
 * stays on into a permanent one, which the TTL is there to prevent.
 */
export interface NameRow {
  groupId: string;
  name: string;
  currentVersion: number;
  createdBy: string;
  /** The lock, when one is held now. */
  lock: FileLock | undefined;
}

type Trx = Transaction<Database>;

export function fileNotFound(groupId: string, file: string): CoterieError {
  return new CoterieError(
    'FILE_NOT_FOUND',
    `no file ${JSON.stringify(file).slice(0, 80)} in group '${groupId}': list the group's files to see what is shared`,
  );
}

/** The clock leases are judged by: the database's on PostgreSQL (one for the whole cluster), else the tracker's. */
export function leaseClock(store: Store, now: () => number): (trx: Trx) => Promise<number> {
  return store.dialect === 'postgres' ? (trx) => databaseNowMs(trx) : async () => now();
}

/** The name `file` stands for in the group: a file id of any retained version, or the name itself. */
export async function nameOf(trx: Trx, groupId: string, file: string): Promise<string> {
  if (isHex64(file)) {
    const byId = await trx
      .selectFrom('group_files')
      .select('name')
      .where('group_id', '=', groupId)
      .where('file_id', '=', file)
      .executeTakeFirst();
    if (byId !== undefined) return byId.name;
  }
  return file;
}

/**
 * Reads the name's row (`forUpdate`: and locks it, on PostgreSQL: pass true
 * there for a write); FILE_NOT_FOUND when the name is not listed.
 */
export async function readNameRow(
  trx: Trx,
  groupId: string,
  name: string,
  t: number,
  forUpdate: boolean,
): Promise<NameRow> {
  const row = await trx
    .selectFrom('file_names')
    .selectAll()
    .where('group_id', '=', groupId)
    .where('name', '=', name)
    .$if(forUpdate, (q) => q.forUpdate())
    .executeTakeFirst();
  if (row === undefined) throw fileNotFound(groupId, name);
  let lock: FileLock | undefined;
  const expiresAt = row.lock_expires_at === null ? 0 : toNumber(row.lock_expires_at);
  if (row.lock_holder !== null && expiresAt > t) {
    const alive =
      row.lock_peer === null ||
      (await trx
        .selectFrom('presence')
        .select('peer_id')
        .where('peer_id', '=', row.lock_peer)
        .where('user_id', '=', row.lock_holder)
        .executeTakeFirst()) !== undefined;
    if (alive) {
      lock = {
        groupId,
        name,
        holder: row.lock_holder,
        ...(row.lock_peer === null ? {} : { peerId: row.lock_peer }),
        expiresAt,
      };
    }
  }
  return {
    groupId,
    name,
    currentVersion: toNumber(row.current_version),
    createdBy: row.created_by,
    lock,
  };
}

/** FILE_LOCKED when someone other than `userId` holds the name's lock. */
export function requireUnlockedFor(row: NameRow, userId: string): void {
  if (row.lock !== undefined && row.lock.holder !== userId) throw fileLocked(row.lock);
}

export { fileLocked };

/**
 * Removes a name with every version (their shares go with them), and
 * records the file ids as deleted for sessions that missed the push.
 */
export async function removeVersions(
  trx: Trx,
  groupId: string,
  name: string,
  fileIds: string[],
  at: number,
): Promise<void> {
  if (fileIds.length === 0) return;
  await trx
    .deleteFrom('group_files')
    .where('group_id', '=', groupId)
    .where('name', '=', name)
    .where('file_id', 'in', fileIds)
    .execute();
  await trx
    .deleteFrom('file_deletions')
    .where('deleted_at', '<', at - DELETIONS_KEPT_MS)
    .execute();
  for (const fileId of fileIds) {
    await trx
      .insertInto('file_deletions')
      .values({ group_id: groupId, file_id: fileId, name, deleted_at: at })
      .onConflict((oc) => oc.columns(['group_id', 'file_id']).doUpdateSet({ name, deleted_at: at }))
      .execute();
  }
}

/** Deletions are replayed this long after they happen: the longest ticket lifetime (an hour). */
export const DELETIONS_KEPT_MS = 3600 * 1000;

/**
 * Takes out of the group's listing the names (these, or all) none of whose
 * versions anyone shares or a storage peer holds verified: a name outlives its
 * sharers while a replica of one of its versions remains. Returns the file ids
 * that left the listing.
 */
export async function dropUnkeptNames(
  trx: Trx | Kysely<Database>,
  groupId: string,
  names?: string[],
): Promise<string[]> {
  if (names !== undefined && names.length === 0) return [];
  // With names, the subquery reads only those names' versions, not the whole group's.
  const kept = trx
    .selectFrom('group_files as gf')
    .select('gf.name')
    .where('gf.group_id', '=', groupId)
    .$if(names !== undefined, (q) => q.where('gf.name', 'in', names!))
    .where(({ or, exists, selectFrom }) =>
      or([
        exists(
          selectFrom('shares as s')
            .select('s.peer_id')
            .whereRef('s.group_id', '=', 'gf.group_id')
            .whereRef('s.file_id', '=', 'gf.file_id'),
        ),
        exists(
          selectFrom('replicas as r')
            .select('r.peer_id')
            .whereRef('r.group_id', '=', 'gf.group_id')
            .whereRef('r.file_id', '=', 'gf.file_id')
            .where('r.state', '=', 'held'),
        ),
      ]),
    );
  let files = trx.deleteFrom('group_files').where('group_id', '=', groupId).where('name', 'not in', kept);
  if (names !== undefined) files = files.where('name', 'in', names);
  const dropped = (await files.returning('file_id').execute()).map((r) => r.file_id);
  let left = trx
    .deleteFrom('file_names')
    .where('group_id', '=', groupId)
    .where('name', 'not in', trx.selectFrom('group_files').select('name').where('group_id', '=', groupId));
  if (names !== undefined) left = left.where('name', 'in', names);
  await left.execute();
  return dropped;
}

export interface Listed {
  fileId: string;
  name: string;
  version: number;
}

/**
 * What `file` (a file id of a retained version, or a name) stands for in the
 * group: the name's current version, or `version` of it when given.
 * FILE_NOT_FOUND, or VERSION_NOT_FOUND when the name is listed but not that version.
 */
export async function findListed(
  db: Kysely<Database>,
  groupId: string,
  file: string,
  version?: number,
): Promise<Listed> {
  const base = db
    .selectFrom('group_files as gf')
    .select(['gf.file_id', 'gf.name', 'gf.version'])
    .where('gf.group_id', '=', groupId);
  let found = isHex64(file) ? await base.where('gf.file_id', '=', file).executeTakeFirst() : undefined;
  if (found === undefined && version !== undefined) {
    found = await base.where('gf.name', '=', file).where('gf.version', '=', version).executeTakeFirst();
  } else if (found === undefined) {
    found = await base
      .innerJoin('file_names as fn', (j) =>
        j
          .onRef('fn.group_id', '=', 'gf.group_id')
          .onRef('fn.name', '=', 'gf.name')
          .onRef('fn.current_version', '=', 'gf.version'),
      )
      .where('gf.name', '=', file)
      .executeTakeFirst();
  }
  const listed = found && { fileId: found.file_id, name: found.name, version: toNumber(found.version) };
  if (listed !== undefined && (version === undefined || listed.version === version)) return listed;
  const named = await db
    .selectFrom('file_names')
    .select('current_version')
    .where('group_id', '=', groupId)
    .where('name', '=', listed?.name ?? file)
    .executeTakeFirst();
  if (named === undefined) throw fileNotFound(groupId, file);
  throw new CoterieError(
    'VERSION_NOT_FOUND',
    `${JSON.stringify(listed?.name ?? file).slice(0, 80)} has no version ${version} in group '${groupId}' (current: ${toNumber(named.current_version)}): list its versions to see those kept`,
  );
}
