import { closeSync, constants, openSync } from 'node:fs';

/** Whether the file at `path` can be opened with O_DIRECT (ext4 and xfs can; tmpfs before Linux 6.6 cannot). */
export function opensDirect(path: string): boolean {
  try {
    closeSync(openSync(path, constants.O_RDONLY | constants.O_DIRECT));
    return true;
  } catch {
    return false;
  }
}
