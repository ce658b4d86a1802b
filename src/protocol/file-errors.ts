import type { FileLock } from './api.js';
import { CoterieError } from './errors.js';

/**
 * The errors of a write to a file name that the tracker refuses and the peer may foresee (its
 * check before hashing a large update): the same words and details from either side.
 */

/** VERSION_CONFLICT: a compare-and-set (`ifVersion`) that is not the name's current version. */
export function versionConflict(name: string, currentVersion: number, ifVersion: number): CoterieError {
  return new CoterieError(
    'VERSION_CONFLICT',
    `${JSON.stringify(name).slice(0, 80)} is at version ${currentVersion}, not ${ifVersion}: list its versions, then update on top of version ${currentVersion}`,
    { details: { currentVersion } },
  );
}

/** FILE_LOCKED: another user holds the name's lock; says who and until when. */
export function fileLocked(lock: Pick<FileLock, 'groupId' | 'name' | 'holder' | 'expiresAt'>): CoterieError {
  return new CoterieError(
    'FILE_LOCKED',
    `${JSON.stringify(lock.name).slice(0, 80)} in group '${lock.groupId}' is locked by '${lock.holder}' until ${new Date(lock.expiresAt).toISOString()}: wait, or ask them to unlock it`,
    { details: { holder: lock.holder, expiresAt: lock.expiresAt } },
  );
}
