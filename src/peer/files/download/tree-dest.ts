import { constants as fsConstants } from 'node:fs';
import { type FileHandle, lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CoterieError } from '../../../protocol/errors.js';
import { treePathProblem } from '../../../protocol/tree-paths.js';
import { DestinationDir, type DirIdentity, identityOf } from './safe-open.js';

const { O_RDONLY, O_WRONLY } = fsConstants;

/**
 * Where the files of a folder download go: below its root, and nowhere else.
 * Each path was validated with the manifest (tree-paths.ts: no `..`, nothing
 * absolute); here each directory on the way is made or found as a real
 * directory, never through a symbolic link, before a file is opened in it.
 */

/** The root of a folder download: made now, or (resuming) found as a real directory. */
export async function openTreeRoot(root: string, resuming: boolean): Promise<TreeDir> {
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
  return realDirectory(root);
}

/** A directory of the tree, made or found as a real directory this download, and its identity. */
export interface TreeDir {
  path: string;
  identity: DirIdentity;
}

/** Where a tree file goes: its directory and the file's path in it. */
export interface TreeFilePlace {
  dir: TreeDir;
  name: string;
  path: string;
}

/**
 * The tree's directories, each made (or found) and checked once per download rather than once
 * per file: a tree of 100,000 files in a few directories would otherwise lstat every path
 * component of every file, twice. What makes this as safe as checking each time: a file is
 * opened only in the very directory checked here (safe-open.ts opens it with O_NOFOLLOW and
 * refuses a different device and inode, as for a resume after a restart), and a subdirectory is
 * made through its parent's descriptor (DestinationDir.subdirectory). A directory swapped for a
 * link, or for another directory, later on is refused; one of ours moved elsewhere keeps
 * receiving its files, as a single download's directory does (safe-open.ts).
 */
export class TreeDirs {
  readonly #dirs = new Map<string, Promise<TreeDir>>();
  /**
   * Directories held open for the files open in them, by path, and how many files use each:
   * opening, checking and closing its directory was 3 of a small file's 17 file-system calls.
   * One is closed as soon as no file of its uses it: the next file to come opens and checks it
   * again, so a directory swapped while none of its files was open is refused, as before.
   */
  readonly #open = new Map<string, { dir: Promise<DestinationDir>; users: number }>();

  /** `root` as openTreeRoot made or found it. */
  constructor(root: TreeDir) {
    this.#dirs.set('', Promise.resolve(root));
  }

  /** Directories checked so far (the root included). */
  get size(): number {
    return this.#dirs.size;
  }

  /** A tree file's place, its directories made: PATH_INVALID when one is not a real directory. */
  async place(relPath: string): Promise<TreeFilePlace> {
    // Checked again here, whatever the caller did: this is the last step before the disk.
    const problem = treePathProblem(relPath);
    if (problem !== undefined) throw new CoterieError('INVALID_MANIFEST', `invalid manifest: ${problem}`);
    const cut = relPath.lastIndexOf('/');
    const dir = await this.#dir(cut < 0 ? '' : relPath.slice(0, cut));
    const name = relPath.slice(cut + 1);
    return { dir, name, path: join(dir.path, name) };
  }

  /** `dir` opened (and checked to be the one it was: safe-open.ts), shared with the other files open in it. */
  async borrow(dir: TreeDir): Promise<{ dir: DestinationDir; release: () => void }> {
    let entry = this.#open.get(dir.path);
    if (entry === undefined) {
      entry = { dir: DestinationDir.open(dir.path, dir.identity), users: 0 };
      this.#open.set(dir.path, entry);
    }
    entry.users++;
    const held = entry;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      if (--held.users > 0) return;
      if (this.#open.get(dir.path) === held) this.#open.delete(dir.path);
      void held.dir.then(
        (d) => d.close(),
        () => undefined,
      );
    };
    try {
      return { dir: await entry.dir, release };
    } catch (err) {
      release(); // not a directory we can use (moved, replaced): the next file tries again
      throw err;
    }
  }

  /** Closes the directories still open (the download finished or stopped). */
  async closeDirs(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.allSettled(all.map((e) => e.dir.then((d) => d.close())));
  }

  /** Runs `fn` with `dir` borrowed. */
  async inDirectory<T>(dir: TreeDir, fn: (d: DestinationDir) => Promise<T>): Promise<T> {
    const { dir: d, release } = await this.borrow(dir);
    try {
      return await fn(d);
    } finally {
      release();
    }
  }

  #dir(rel: string): Promise<TreeDir> {
    let dir = this.#dirs.get(rel);
    if (dir === undefined) {
      dir = this.#make(rel);
      this.#dirs.set(rel, dir); // a failure is cached too: the same answer for each file in it
    }
    return dir;
  }

  async #make(rel: string): Promise<TreeDir> {
    const cut = rel.lastIndexOf('/');
    const parent = await this.#dir(cut < 0 ? '' : rel.slice(0, cut));
    const name = rel.slice(cut + 1);
    const identity = await this.inDirectory(parent, (d) => d.subdirectory(name));
    return { path: join(parent.path, name), identity };
  }
}

async function realDirectory(root: string): Promise<TreeDir> {
  const st = await lstat(root, { bigint: true });
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new CoterieError('PATH_INVALID', `${root} is not a directory (a link or a file is in the way)`);
  }
  return { path: root, identity: identityOf(st) };
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

/** An empty file of the tree: created in its checked directory, never through a link nor over an existing file. */
export async function writeEmptyFile(
  dirs: TreeDirs,
  place: TreeFilePlace,
  executable: boolean,
): Promise<void> {
  await dirs.inDirectory(place.dir, async (d) => {
    const fh = await d.create(place.name, O_WRONLY, 0o666);
    try {
      if (executable) await giveExecuteBits(fh);
    } finally {
      await fh.close();
    }
  });
}

/** Gives a finished executable file of the tree its execute bits, in its checked directory, never through a link. */
export async function restoreExecutable(dirs: TreeDirs, place: TreeFilePlace): Promise<void> {
  await dirs.inDirectory(place.dir, async (d) => {
    const fh = await d.openExisting(place.name, O_RDONLY);
    if (fh === undefined) throw new CoterieError('DOWNLOAD_FAILED', `${place.path} went missing`);
    try {
      await giveExecuteBits(fh);
    } finally {
      await fh.close();
    }
  });
}

/** Execute bits where the file has read bits, as `chmod +x` under a 022 umask. */
async function giveExecuteBits(fh: FileHandle): Promise<void> {
  const { mode } = await fh.stat();
  await fh.chmod((mode | ((mode & 0o444) >> 2)) & 0o7777);
}
