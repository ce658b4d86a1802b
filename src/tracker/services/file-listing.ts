import type { Kysely } from 'kysely';
import { type Database, toNumber } from '../store/index.js';

/**
 * A group's listing: each name at its current version, with its lock when
 * one is held (the same rule as file-names.ts: not expired, and the holder's
 * peer, when it named one, still has a session somewhere in the cluster).
 */
export function listCurrentVersions(db: Kysely<Database>, groupId: string) {
  return db
    .selectFrom('file_names as fn')
    .innerJoin('group_files as gf', (j) =>
      j
        .onRef('gf.group_id', '=', 'fn.group_id')
        .onRef('gf.name', '=', 'fn.name')
        .onRef('gf.version', '=', 'fn.current_version'),
    )
    .innerJoin('files as f', 'f.file_id', 'gf.file_id')
    .leftJoin('presence as lp', (j) =>
      j.onRef('lp.peer_id', '=', 'fn.lock_peer').onRef('lp.user_id', '=', 'fn.lock_holder'),
    )
    .select([
      'gf.file_id',
      'gf.name',
      'gf.version',
      'gf.created_at',
      'f.size',
      'f.piece_size',
      'f.piece_count',
      'fn.lock_holder',
      'fn.lock_peer',
      'fn.lock_expires_at',
      'lp.peer_id as lock_peer_present',
    ])
    .where('fn.group_id', '=', groupId)
    .orderBy('fn.name')
    .execute();
}

type ListedRow = Awaited<ReturnType<typeof listCurrentVersions>>[number];

/** `{ lock }` for a listing entry whose lock is held at `t`, else nothing. */
export function lockShown(r: ListedRow, t: number): { lock?: { holder: string; expiresAt: number } } {
  if (r.lock_holder === null || r.lock_expires_at === null) return {};
  const expiresAt = toNumber(r.lock_expires_at);
  const alive = r.lock_peer === null || r.lock_peer_present !== null;
  return expiresAt > t && alive ? { lock: { holder: r.lock_holder, expiresAt } } : {};
}
