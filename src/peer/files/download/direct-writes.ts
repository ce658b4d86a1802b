import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { DestinationDir } from './safe-open.js';

// The part file's writes below the piece level: every byte of a run of buffers, and the
// O_DIRECT descriptor beside the ordinary one (partial-file.ts says when each is used).

/** What a file system answers to an O_DIRECT write it cannot do (alignment, or no support at all). */
export const REFUSED_DIRECT = new Set(['EINVAL', 'EOPNOTSUPP', 'ENOTSUP']);

/** Writes every byte of `buffers` at `position`, continuing after short writes. */
export async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, position);
    position += bytesWritten;
    pending = skipBytes(pending, bytesWritten);
  }
}

/** `buffers` without their first `skip` bytes. */
export function skipBytes(buffers: Buffer[], skip: number): Buffer[] {
  const rest: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) skip -= b.length;
    else {
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
  }
  return rest;
}

/**
 * The part file opened again with O_DIRECT (by name, without following a
 * link, and checked to be the same file as `handle`), or undefined where the
 * platform or file system has none.
 */
export async function openDirect(
  dir: DestinationDir,
  name: string,
  handle: FileHandle,
): Promise<FileHandle | undefined> {
  const flag = fsConstants.O_DIRECT;
  if (flag === undefined) return undefined;
  let direct: FileHandle | undefined;
  try {
    direct = await dir.openExisting(name, fsConstants.O_RDWR | flag);
  } catch {
    return undefined; // tmpfs before Linux 6.6 and others: EINVAL; written through the cache then
  }
  if (direct === undefined) return undefined;
  const [a, b] = await Promise.all([direct.stat(), handle.stat()]);
  if (a.dev === b.dev && a.ino === b.ino) return direct;
  await direct.close();
  return undefined;
}
