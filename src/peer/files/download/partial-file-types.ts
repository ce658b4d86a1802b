import type { Bitfield } from '../../../core/bitfield.js';
import type { Manifest } from '../../../protocol/manifest.js';
import type { Clock } from '../../../wire/index.js';
import type { DestinationDir, DirIdentity } from './safe-open.js';

// What partial-file.ts takes and gives: its options and the partial file's interface.

export interface PartialFileOptions {
  manifest: Manifest;
  fileId: string;
  dest: string;
  overwrite?: boolean;
  /** Minimum time between resume-file writes while downloading, on `clock` (the real one by default). */
  resumeIntervalMs?: number;
  clock?: Clock;
  /** Called per kept piece re-checked on reopen (progress for big files). */
  onRecheck?: (done: number, total: number) => void;
  /**
   * SHA-256 (hex) of a kept piece on reopen; the download passes its hashing
   * worker, so that a big file's re-check reads and hashes at once, off the
   * main thread. Default: hashed on the calling thread.
   */
  hashPiece?: (data: Buffer) => Promise<string>;
  /** Write aligned pieces with O_DIRECT where the file system allows it (default false). */
  directIo?: boolean;
  /** Reserve the blocks of a part file with a whole piece as it opens (preallocate.ts; default false): DISK_FULL when it cannot fit. */
  preallocate?: boolean;
  /**
   * The destination directory's identity when the download started
   * (`destDir` of the first open): a reopen (a resume after a restart) is
   * refused with PATH_INVALID unless the directory is still that one, a real
   * directory at the same real path. `dest` then names a file in it by its
   * real path.
   */
  destDir?: DirIdentity;
  /**
   * The part file is reopened in the run that closed it (a folder download keeps few files
   * open: open-files.ts): these pieces were verified and synced before it closed, so they are
   * not hashed again, and a part file gone meanwhile is an error rather than a fresh start.
   */
  verified?: Bitfield;
  /**
   * Nothing of this file from an earlier run can be at its place (a folder download that made
   * its root this run, the file opened for the first time): the destination and the resume
   * files are not looked for. The part file is still created O_EXCL|O_NOFOLLOW, and placed
   * without replacing anything, so whatever was planted meanwhile is refused all the same.
   */
  fresh?: boolean;
  /**
   * The destination directory already open (a folder download shares one per directory among
   * its files: TreeDirs.borrow in tree-dest.ts): used instead of opening it, and given back with
   * `release` rather than closed.
   */
  sharedDir?: { dir: DestinationDir; release: () => void };
}

export interface PartialFile {
  readonly dest: string;
  readonly partPath: string;
  readonly resumePath: string;
  /** The destination directory's identity, to pass as `destDir` when the download is opened again. */
  readonly destDir: DirIdentity;
  /** Pieces verified and on disk (including ones kept from an earlier run). */
  hasPiece(index: number): boolean;
  verifiedCount(): number;
  /** Pieces kept from an earlier run that passed the re-check. */
  readonly resumedPieces: number;
  /** Bytes written past the page cache so far (O_DIRECT). */
  readonly directBytes: number;
  /** Writes a verified piece at its position and records it. */
  writePiece(index: number, data: Buffer): Promise<void>;
  /** Reads bytes of a verified piece (for serving it to other downloaders). */
  read(index: number, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /**
   * Every piece verified: fsync, name it dest (DESTINATION_EXISTS rather than replace one), remove
   * the resume file, fsync the directory; `syncDir: false` leaves that to the caller (a folder,
   * once per directory). A name lost in a crash costs a refetch, never an unsynced file trusted.
   */
  finish(options?: { syncDir?: boolean }): Promise<void>;
  /** Stops, saving the resume state (or removing everything after DISK_FULL); leaves nothing at dest. */
  close(): Promise<void>;
}
