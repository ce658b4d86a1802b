import { fileLocked, versionConflict } from '../../protocol/file-errors.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';

/**
 * update_file's checks before it hashes: the caller is a member, the name is listed, and
 * neither `--if-version` nor another user's lock already dooms the update. Hashing a large
 * file only to be refused wastes minutes; the tracker checks all of it again, atomically,
 * when the update arrives.
 */
export async function precheckUpdate(
  http: TrackerHttpClient,
  groupId: string,
  fileName: string,
  ifVersion: number | undefined,
  userId: string | undefined,
): Promise<void> {
  const list = await http.call('listVersions', { params: { groupId, file: fileName } });
  const { currentVersion, lock } = list;
  if (ifVersion !== undefined && ifVersion !== currentVersion) {
    throw versionConflict(list.name, currentVersion, ifVersion);
  }
  if (lock !== undefined && lock.holder !== userId && lock.expiresAt > Date.now()) throw fileLocked(lock);
}
