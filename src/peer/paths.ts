import { lstatSync, realpathSync, type Stats, statSync } from 'node:fs';
import { basename, dirname, join, sep } from 'node:path';
import { CoterieError } from '../protocol/errors.js';
import type { DirIdentity } from './files/index.js';
import type { PeerStore } from './store/index.js';

/**
 * The file to share must exist and be a regular file (not a device or socket), or, with
 * `folders`, a directory (a folder share).
 */
export function checkSourceFile(
  path: string,
  options: { folders?: boolean } = {},
): { size: number; folder: boolean } {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new CoterieError('PATH_INVALID', `no such file: ${path}`);
  }
  if (st.isDirectory() && options.folders === true) return { size: 0, folder: true };
  if (!st.isFile()) throw new CoterieError('PATH_INVALID', `not a regular file: ${path}`);
  return { size: st.size, folder: false };
}

/** Where a download goes: its file by real path, and its directory's identity (kept with the download). */
export interface Destination {
  path: string;
  dir: DirIdentity;
}

/**
 * Where a download goes:
 * - an existing directory: `dest/<file_name>`;
 * - `dir/` (a trailing slash) names a directory, which must exist;
 * - anything else that does not exist is the file itself, in a directory that must exist.
 * A `dest` that is a symbolic link to a directory is that directory (a
 * symlinked ~/Downloads is common; links above `dest` are followed the same
 * way); a link to anything else, or to nothing, is refused: a link planted
 * where the user expects a file must not decide where the group's file goes.
 * The directory is resolved once, here (realpath): the
 * download keeps that path and the directory's device and inode, and is
 * refused later if they change (safe-open.ts). An existing file at the
 * destination is refused (DESTINATION_EXISTS) rather than overwritten.
 */
export function resolveDestination(dest: string, fileName: string): Destination {
  if (fileName === '' || fileName === '.' || fileName === '..' || basename(fileName) !== fileName) {
    throw new CoterieError('PATH_INVALID', `'${fileName}' is not a file name`);
  }
  const asDirectory = dest.length > 1 && dest.endsWith(sep);
  const bare = asDirectory ? dest.replace(/\/+$/, '') || sep : dest;
  const st = lstatOrUndefined(bare);
  let target = bare;
  const isDirectory = st?.isSymbolicLink() ? lstatOrUndefined(bare, true)?.isDirectory() : st?.isDirectory();
  if (st?.isSymbolicLink() && isDirectory !== true) throw symlinkRefused(bare);
  if (isDirectory === true) target = join(bare, fileName);
  else if (st !== undefined && asDirectory)
    throw new CoterieError('PATH_INVALID', `${bare} is not a directory`);
  else if (st === undefined && asDirectory) {
    throw new CoterieError('PATH_INVALID', `destination directory does not exist: ${bare}: create it first`);
  }
  const dir = dirname(target);
  if (!(lstatOrUndefined(dir, true)?.isDirectory() ?? false)) {
    throw new CoterieError('PATH_INVALID', `directory does not exist: ${dir}: create it first`);
  }
  const realDir = realpathSync(dir);
  const path = join(realDir, basename(target));
  const existing = lstatOrUndefined(path);
  if (existing?.isSymbolicLink()) throw symlinkRefused(path);
  if (existing !== undefined) {
    throw new CoterieError(
      'DESTINATION_EXISTS',
      `${path} exists: remove it or choose another destination than '${basename(path)}'`,
    );
  }
  const id = statSync(realDir, { bigint: true });
  return { path, dir: { dev: id.dev.toString(), ino: id.ino.toString() } };
}

/** lstat (stat with `follow`), or undefined when nothing is there. */
function lstatOrUndefined(path: string, follow = false): Stats | undefined {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new CoterieError('PATH_INVALID', `cannot use ${path}: ${(err as Error).message}`);
  }
}

function symlinkRefused(path: string): CoterieError {
  return new CoterieError(
    'PATH_INVALID',
    `${path} is a symbolic link: Coterie does not download through links; give the path it points to, if that is where the file should go`,
  );
}

type MetaStore = Pick<PeerStore, 'getMeta' | 'setMeta'>;

// A download's directory identity lives in the store's meta table (one key per download)
// rather than in a new downloads column: no peer.db migration for a value only resume reads.
const destDirKey = (downloadId: number) => `download_dir:${downloadId}`;

export function rememberDestDir(store: MetaStore, downloadId: number, dir: DirIdentity | undefined): void {
  store.setMeta(destDirKey(downloadId), dir === undefined ? undefined : JSON.stringify(dir));
}

/** The directory identity kept at the start of a download (none for downloads older than this check). */
export function destDirOf(store: MetaStore, downloadId: number): DirIdentity | undefined {
  const raw = store.getMeta(destDirKey(downloadId));
  if (raw === undefined) return undefined;
  try {
    const v = JSON.parse(raw) as Partial<DirIdentity> | null;
    if (typeof v?.dev === 'string' && typeof v.ino === 'string') return { dev: v.dev, ino: v.ino };
  } catch {
    // damaged: as if none was kept
  }
  return undefined;
}
