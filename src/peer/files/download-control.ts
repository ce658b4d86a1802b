import { lstat, readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CoterieError } from '../../protocol/errors.js';
import type { DownloadRecord, PeerStore } from '../store/index.js';
import { partNames } from './download/index.js';

// pause_download, resume_download and cancel_download: the download a command names, and what
// cancelling removes.

/** A download by its id (`3` or `#3`), or the latest one of a file name. */
export function findDownload(store: PeerStore, download: string): DownloadRecord {
  const id = /^#?\d+$/.test(download) ? Number(download.replace('#', '')) : undefined;
  const userId = store.getSession()?.userId;
  const mine = store.downloads.list().filter((d) => d.userId === userId);
  const rec =
    id !== undefined && mine.some((d) => d.id === id)
      ? mine.find((d) => d.id === id)
      : mine.filter((d) => d.fileName === download).at(-1);
  if (rec === undefined) {
    throw new CoterieError(
      'DOWNLOAD_NOT_FOUND',
      `no download '${download}': show_downloads lists them (by id, or by file name for the latest)`,
    );
  }
  return rec;
}

/**
 * cancel_download's clean-up: a file download's `<dest>.part` and its resume
 * files, or those of every file of a folder download under its root. Only
 * those names go (never a completed file); a link at one of them is removed,
 * not followed.
 */
export async function removePartFiles(dest: string): Promise<void> {
  const st = await lstat(dest).catch(() => undefined);
  if (st?.isDirectory() !== true) return removeNamesOf(dirname(dest), basename(dest));
  const entries = await readdir(dest, { recursive: true, withFileTypes: true });
  for (const e of entries) {
    if (e.name.endsWith('.part'))
      await removeNamesOf(e.parentPath ?? e.path, e.name.slice(0, -'.part'.length));
  }
}

async function removeNamesOf(dir: string, name: string): Promise<void> {
  const names = partNames(name);
  for (const n of [names.part, names.resume, names.resumeTmp]) await rm(join(dir, n), { force: true });
}
