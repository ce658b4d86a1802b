import { existsSync, constants as fsConstants, type Stats } from 'node:fs';
import { type FileHandle, link, lstat, mkdir, open, realpath, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CoterieError } from '../../../protocol/errors.js';

/**
 * A download's destination directory, resolved once and held open, and the
 * only way the download touches names in it. Anyone who can write to that
 * directory (another local user in a shared or world-writable one) may plant
 * a symbolic link at `<dest>.part` or its resume files, hoping the daemon
 * writes the group's file through it into something of theirs or of the
 * user's; or swap the directory itself for a link while the daemon is down.
 *
 * - Every file is created with O_CREAT|O_EXCL|O_NOFOLLOW (a name that exists,
 *   a link included, fails instead of being followed or truncated), and
 *   reopened with O_NOFOLLOW and an fstat check that it is a regular file
 *   with one link (not a hard link to someone else's file).
 * - On Linux the directory is opened once (O_DIRECTORY|O_NOFOLLOW) and names
 *   are reached through `/proc/self/fd/<fd>/<name>`: openat() semantics from
 *   Node, so a directory renamed or replaced by a link after it was opened
 *   changes nothing: the download keeps writing where it started. Where
 *   /proc is missing, each use re-checks the directory's device and inode
 *   first (a narrower window, not none).
 * - Reopened for a later run (`expected`: a resume after a restart), the
 *   directory must be a real directory with the same device and inode.
 */

/** A directory's identity, as decimal strings (64-bit inode numbers do not fit a JSON number). */
export interface DirIdentity {
  dev: string;
  ino: string;
}

const HAS_PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_RDONLY, O_WRONLY, O_RDWR } = fsConstants;
const O_DIRECTORY = fsConstants.O_DIRECTORY ?? 0;

/** Files a download creates hold a group's data: readable by the user only. */
const FILE_MODE = 0o600;

export const identityOf = (st: { dev: bigint; ino: bigint }): DirIdentity => ({
  dev: st.dev.toString(),
  ino: st.ino.toString(),
});

const sameIdentity = (a: DirIdentity, b: DirIdentity) => a.dev === b.dev && a.ino === b.ino;

const errnoOf = (err: unknown) => (err as NodeJS.ErrnoException).code ?? '';

export class DestinationDir {
  private constructor(
    /** The directory's real path (no symbolic link in it). */
    readonly path: string,
    private readonly handle: FileHandle,
    readonly identity: DirIdentity,
  ) {}

  /**
   * Opens `dir` (resolved with realpath), or, with `expected`, the very
   * directory a download started in (`dir` is then the real path kept then).
   */
  static async open(dir: string, expected?: DirIdentity): Promise<DestinationDir> {
    const real =
      expected === undefined
        ? await realpath(dir).catch(() => {
            throw new CoterieError('PATH_INVALID', `directory ${dir} does not exist: create it first`);
          })
        : dir;
    let handle: FileHandle;
    try {
      handle = await open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') {
        throw new CoterieError('PATH_INVALID', `directory ${real} does not exist: create it first`);
      }
      throw new CoterieError(
        'PATH_INVALID',
        `${real} is no longer a directory (a symbolic link or another file took its place): put the directory back or download elsewhere`,
        { cause: err },
      );
    }
    const st = await handle.stat({ bigint: true });
    const identity = identityOf(st);
    if (!st.isDirectory() || (expected !== undefined && !sameIdentity(identity, expected))) {
      await handle.close();
      throw new CoterieError(
        'PATH_INVALID',
        `${real} is not the directory this download started in (it was replaced): put it back or download elsewhere`,
      );
    }
    return new DestinationDir(real, handle, identity);
  }

  /** The path that reaches `name` in this directory (through its descriptor where /proc has it). */
  private async at(name: string): Promise<string> {
    if (HAS_PROC_FD) return `/proc/self/fd/${this.handle.fd}/${name}`;
    const st = await lstat(this.path, { bigint: true }).catch(() => undefined);
    if (st === undefined || !st.isDirectory() || !sameIdentity(identityOf(st), this.identity)) {
      throw new CoterieError('PATH_INVALID', `${this.path} was replaced during the download: download again`);
    }
    return join(this.path, name);
  }

  /** What the user sees for `name`. */
  shown(name: string): string {
    return join(this.path, name);
  }

  /** Creates `name`; EEXIST (a CoterieError PATH_INVALID for a symbolic link) when something is there. */
  async create(name: string, access = O_RDWR, mode = FILE_MODE): Promise<FileHandle> {
    try {
      return await open(await this.at(name), access | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
    } catch (err) {
      if (errnoOf(err) === 'EEXIST') await this.refuseLink(name);
      throw err;
    }
  }

  /** A new, empty file `name`; one left by an earlier run (a regular file, never a link) is emptied. */
  async createOrEmpty(name: string): Promise<FileHandle> {
    try {
      return await this.create(name);
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw err;
    }
    const stale = await this.openExisting(name, O_RDWR);
    if (stale === undefined) return this.create(name);
    await stale.truncate(0);
    return stale;
  }

  /** `name` must be free, or (with `overwrite`) a regular file; never a link. */
  async checkDestination(name: string, overwrite: boolean): Promise<void> {
    const existing = await this.lstat(name);
    if (existing === undefined) return;
    if (existing.isSymbolicLink()) throw this.linkRefused(name);
    const shown = this.shown(name);
    if (!existing.isFile())
      throw new CoterieError('PATH_INVALID', `${shown} exists and is not a regular file`);
    if (!overwrite) {
      throw new CoterieError('DESTINATION_EXISTS', `${shown} exists: pick another path or ask to overwrite`);
    }
  }

  /**
   * Opens an existing regular file `name` without following a link;
   * undefined when there is none. Opened for writing, it must have one link.
   */
  async openExisting(name: string, access: number): Promise<FileHandle | undefined> {
    let h: FileHandle;
    try {
      // O_NONBLOCK: a FIFO planted there must not hang the open (no effect on regular files).
      h = await open(await this.at(name), access | O_NOFOLLOW | O_NONBLOCK);
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return undefined;
      if (code === 'ELOOP') throw this.linkRefused(name);
      if (code === 'EISDIR') throw this.notAFile(name);
      throw err;
    }
    const st = await h.stat();
    const writing = (access & (O_WRONLY | O_RDWR)) !== 0;
    if (!st.isFile() || (writing && st.nlink !== 1)) {
      await h.close();
      throw this.notAFile(name);
    }
    return h;
  }

  /** The file `name` without following a link (undefined when there is none). */
  async lstat(name: string): Promise<Stats | undefined> {
    try {
      return await lstat(await this.at(name));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** PATH_INVALID when `name` is a symbolic link (to anything, or dangling). */
  async refuseLink(name: string): Promise<void> {
    if ((await this.lstat(name))?.isSymbolicLink()) throw this.linkRefused(name);
  }

  /** refuseLink for each of `names`, answering which of them exist (so that absent ones are not opened or removed). */
  async presentOf(names: string[]): Promise<Set<string>> {
    const present = new Set<string>();
    for (const name of names) {
      const st = await this.lstat(name);
      if (st?.isSymbolicLink()) throw this.linkRefused(name);
      if (st !== undefined) present.add(name);
    }
    return present;
  }

  /**
   * The subdirectory `name`, made here or found, and its identity: PATH_INVALID unless it is a
   * real directory (a link or a file in the way). Made through this directory's descriptor, so
   * a parent swapped for a link since it was opened does not take the new directory elsewhere.
   */
  async subdirectory(name: string): Promise<DirIdentity> {
    const path = await this.at(name);
    await mkdir(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST')
        throw CoterieError.from(err, 'PATH_INVALID', (t) => `cannot create ${this.shown(name)}: ${t}`);
    });
    const st = await lstat(path, { bigint: true });
    if (st.isSymbolicLink() || !st.isDirectory()) {
      throw new CoterieError(
        'PATH_INVALID',
        `${this.shown(name)} is not a directory (a link or a file is in the way)`,
      );
    }
    return identityOf(st);
  }

  /** Removes the name `name` (a link itself, never what it points to); none is fine. */
  async unlink(name: string): Promise<void> {
    try {
      await unlink(await this.at(name));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw err;
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await rename(await this.at(from), await this.at(to));
  }

  /**
   * Gives the finished file `from` (whose fstat is `file`) its name `to`,
   * never replacing nor following anything that appeared at `to` meanwhile.
   *
   * link(from, to) then unlink(from), rather than renameat2(RENAME_NOREPLACE)
   * through the native addon: link() fails with EEXIST on every POSIX file
   * system and needs no native build (the addon is optional: `npm ci
   * --ignore-scripts` has none), and the new name is checked to be our file
   * (same device and inode) before the old one goes, which also catches a
   * `from` swapped for a link after the file was closed. Where the file
   * system has no hard links (vfat, some FUSE), a rename after an lstat
   * check that `to` is free: a window between the two, the best that file
   * system allows.
   */
  async placeNoReplace(from: string, to: string, file: { dev: number; ino: number }): Promise<void> {
    try {
      await link(await this.at(from), await this.at(to));
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'EEXIST') throw this.destinationExists(to);
      if (!NO_HARD_LINKS.has(code)) throw err;
      if ((await this.lstat(to)) !== undefined) throw this.destinationExists(to);
      await this.rename(from, to);
      return;
    }
    const placed = await this.lstat(to);
    if (placed === undefined || placed.dev !== file.dev || placed.ino !== file.ino) {
      // What we linked is not the file we wrote (its name was swapped): take our link back.
      await this.unlink(to);
      throw this.linkRefused(from);
    }
    await this.unlink(from);
  }

  /** Makes renames and new names durable; not every platform can fsync a directory, which is fine. */
  async sync(): Promise<void> {
    await this.handle.sync().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }

  private linkRefused(name: string): CoterieError {
    return new CoterieError(
      'PATH_INVALID',
      `${this.shown(name)} is a symbolic link: Coterie does not write through links; remove it (what it points to is left alone) and download again`,
    );
  }

  private notAFile(name: string): CoterieError {
    return new CoterieError(
      'PATH_INVALID',
      `${this.shown(name)} is not a regular file of its own (a directory, device or hard link): remove it and download again`,
    );
  }

  private destinationExists(name: string): CoterieError {
    return new CoterieError(
      'DESTINATION_EXISTS',
      `${this.shown(name)} appeared during the download and was left alone: move it away and download again`,
    );
  }
}

/** What link() answers on a file system without hard links. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);
