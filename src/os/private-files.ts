/**
 * Files only their owner reads: what a tracker and a peer keep on disk (the
 * stores with their password hashes, tokens and messages, the keys, the
 * logs) is theirs and their user's alone, whatever the umask or the mode
 * of a directory that existed before.
 */
import { chmodSync, closeSync, fchmodSync, fstatSync, lstatSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CoterieError } from '../protocol/errors.js';

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** Bits that let the group or others in. */
const SHARED_BITS = 0o077;

/** A path whose mode was narrowed at start, for the warning that says so. */
export interface Tightened {
  path: string;
  /** Octal strings, e.g. '644' → '600'. */
  from: string;
  to: string;
}

/**
 * A daemon's files are its own: SQLite's -wal and -shm files, pino's log, and
 * whatever a library creates without asking us for a mode would otherwise
 * follow the caller's umask (022: readable by every local user). Explicit
 * modes are passed as well where we create files; this covers the rest.
 */
export function restrictUmask(): void {
  process.umask(0o077);
}

const octal = (mode: number) => (mode & 0o777).toString(8);

function tighten(path: string, mode: number, isDir: boolean, out: Tightened[]): void {
  if ((mode & SHARED_BITS) === 0) return;
  // The owner keeps what it had (a directory stays enterable); the group and others lose everything.
  const to = (mode & 0o700) | (isDir ? PRIVATE_DIR_MODE : 0);
  try {
    chmodSync(path, to);
  } catch (err) {
    throw new CoterieError(
      'UNSAFE_PERMISSIONS',
      `${path} is open to other users (mode ${octal(mode)}) and cannot be made private: ${(err as Error).message}; run 'chmod go-rwx ${path}' as its owner, or start as the user who owns it`,
      { cause: err },
    );
  }
  out.push({ path, from: octal(mode), to: octal(to) });
}

/**
 * Narrows DIR and each entry in it (files and directories, not their
 * contents; symbolic links are never followed) to owner-only modes.
 * Returns what it changed, for a logged warning; UNSAFE_PERMISSIONS where
 * it cannot (another user owns the path).
 */
export function tightenPrivateDir(dir: string): Tightened[] {
  const out: Tightened[] = [];
  const top = lstatSync(dir);
  tighten(dir, top.mode, true, out);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isSymbolicLink()) continue;
    const path = join(dir, entry.name);
    let st: ReturnType<typeof lstatSync>;
    try {
      st = lstatSync(path);
    } catch {
      continue; // gone in between (a temporary file)
    }
    if (st.isFile() || st.isDirectory()) tighten(path, st.mode, st.isDirectory(), out);
  }
  return out;
}

/**
 * Creates PATH empty with mode 0600 if it does not exist, and narrows it to
 * 0600 if it does: before SQLite opens a database (its -wal and -shm files
 * take the database's mode) or a logger appends to a file.
 */
export function ensurePrivateFile(path: string): void {
  const fd = openSync(path, 'a', PRIVATE_FILE_MODE);
  try {
    if ((fstatSync(fd).mode & SHARED_BITS) !== 0) fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

/** Narrows each existing path of PATHS to 0600 (after a library created them). */
export function narrowExistingFiles(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      const st = lstatSync(path);
      if (st.isFile() && (st.mode & SHARED_BITS) !== 0) chmodSync(path, PRIVATE_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}
