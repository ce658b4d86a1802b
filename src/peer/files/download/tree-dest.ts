import { chmod, lstat, mkdir, open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CoterieError } from '../../../protocol/errors.js';
import { treePathProblem } from '../../../protocol/tree-paths.js';

/**
 * Where the files of a folder download go: below its root, and nowhere else.
 * Each path was validated with the manifest (tree-paths.ts: no `..`, nothing
 * absolute); here each directory on the way is made or found as a real
 * directory, never through a symbolic link, before a file is opened in it.
 */

/** The root of a folder download: made now, or (resuming) found as a real directory. */
export async function openTreeRoot(root: string, resuming: boolean): Promise<void> {
  try {
    await mkdir(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw CoterieError.from(err, 'PATH_INVALID', (text) => `cannot create ${root}: ${text}`);
    }
    if (!resuming) {
      throw new CoterieError('DESTINATION_EXISTS', `${root} exists: remove it or choose another destination`);
    }
  }
  await assertRealDirectory(root);
}

/** The local path of a tree file, its directories made: PATH_INVALID when one is not a real directory. */
export async function treeFileTarget(root: string, relPath: string): Promise<string> {
  // Checked again here, whatever the caller did: this is the last step before the disk.
  const problem = treePathProblem(relPath);
  if (problem !== undefined) throw new CoterieError('INVALID_MANIFEST', `invalid manifest: ${problem}`);
  const parts = relPath.split('/');
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = join(dir, part);
    await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST')
        throw CoterieError.from(err, 'PATH_INVALID', (t) => `cannot create ${dir}: ${t}`);
    });
    await assertRealDirectory(dir);
  }
  return join(dir, parts[parts.length - 1]!);
}

async function assertRealDirectory(dir: string): Promise<void> {
  const st = await lstat(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new CoterieError('PATH_INVALID', `${dir} is not a directory (a link or a file is in the way)`);
  }
}

/**
 * What is at a tree file's place: 'absent', 'done' (a regular file of the
 * expected size: a download only ever names a file once all its pieces are
 * verified, see partial-file.ts), or DESTINATION_EXISTS for anything else.
 */
export async function treeFileState(target: string, size: number): Promise<'absent' | 'done'> {
  const st = await lstat(target).catch(() => undefined);
  if (st === undefined) return 'absent';
  if (st.isFile() && st.size === size) return 'done';
  throw new CoterieError('DESTINATION_EXISTS', `${target} exists and is not this folder's file: remove it`);
}

/** An empty file of the tree: created, never through a link nor over an existing file. */
export async function writeEmptyFile(target: string): Promise<void> {
  const fh = await open(target, 'wx', 0o666);
  await fh.close();
}

/** Gives an executable file of the tree its execute bits (where it has read bits, as `chmod +x` under a 022 umask). */
export async function restoreExecutable(target: string): Promise<void> {
  const { mode } = await stat(target);
  await chmod(target, (mode | ((mode & 0o444) >> 2)) & 0o7777);
}
