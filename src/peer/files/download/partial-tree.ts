import { lstat, open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import { MANIFEST_VERSION, type Manifest, treeLayout } from '../../../protocol/manifest.js';
import type { Clock } from '../../../wire/index.js';
import { OpenFiles } from './open-files.js';
import { openPartialFile, type PartialFile } from './partial-file.js';
import type { PieceStore } from './piece-store.js';
import { partNames } from './resume-file.js';
import {
  openTreeRoot,
  restoreExecutable,
  TreeDirs,
  type TreeFilePlace,
  treeFileState,
  writeEmptyFile,
} from './tree-dest.js';

export interface PartialTreeOptions {
  manifest: Manifest;
  fileId: string;
  /** The folder's directory (made when it opens unless `resuming`). */
  root: string;
  resuming: boolean;
  clock: Clock;
  directIo: boolean;
  preallocate: boolean;
  resumeIntervalMs?: number;
  /** Partial files open at once (open-files.ts); OPEN_PARTIAL_FILES by default. */
  maxOpenFiles?: number;
}

/** A folder download's partial files open at once: each holds two or three descriptors. */
export const OPEN_PARTIAL_FILES = 64;

/**
 * A folder download's pieces on disk, numbered as the share numbers them:
 * one engine fetches the whole selection, and each selected file is its own
 * partial file (partial-file.ts) at `<root>/<path>`, opened when its first
 * piece arrives and named in place as its last one is written (pieces never
 * span files). At most maxOpenFiles are open at once: the least recently
 * used is closed (its resume file saved) and opened again when a piece of
 * it comes or is read, its verified pieces trusted without a re-check.
 * Unselected files are never opened: 0 bytes on disk. A file
 * already at its place with its size was finished by an earlier run; a file
 * with a part file is resumed from it (its pieces re-checked).
 */
export class PartialTree implements PieceStore {
  readonly #o: PartialTreeOptions;
  #hashPiece: ((data: Buffer) => Promise<string>) | undefined;
  /** Files selected, and the work of looking at each one's place (awaited by finish and close). */
  readonly #selected = new Map<number, Promise<void>>();
  readonly #done = new Set<number>();
  readonly #files: OpenFiles<PartialFile>;
  /** Verified pieces of the files closed to make room, by file. */
  readonly #kept = new Map<number, Bitfield>();
  readonly #finishing = new Map<number, Promise<void>>();
  /** Directories files were named in since the last finish(): each is fsynced once there. */
  readonly #unsyncedDirs = new Set<string>();
  /** The tree's directories, each checked once (set by open()). */
  #dirs: TreeDirs | undefined;
  /** Each selected file's place, found once. */
  readonly #places = new Map<number, Promise<TreeFilePlace>>();
  #opened = false;
  #closed = false;
  resumedPieces = 0;
  #directBytes = 0;

  constructor(o: PartialTreeOptions) {
    this.#o = o;
    this.#files = new OpenFiles(
      o.maxOpenFiles ?? OPEN_PARTIAL_FILES,
      (k) => this.#openPartial(k),
      (k, partial) => this.#closeToMakeRoom(k, partial),
    );
  }

  /** The most partial files open at once so far, and how many were closed to make room. */
  get openFiles(): { max: number; peak: number; evictions: number } {
    return { max: this.#files.max, peak: this.#files.peak, evictions: this.#files.evictions };
  }

  /** Makes (or, resuming, finds) the root, then looks at the selected files' places. */
  async open(hashPiece: (data: Buffer) => Promise<string>): Promise<this> {
    this.#hashPiece = hashPiece;
    this.#dirs = new TreeDirs(await openTreeRoot(this.#o.root, this.#o.resuming));
    this.#opened = true;
    for (const k of this.#selected.keys()) this.#selected.set(k, this.#prepare(k));
    await Promise.all(this.#selected.values());
    return this;
  }

  /** Adds files to the selection; their places are looked at before a piece of theirs is written. */
  select(files: Iterable<number>): void {
    for (const k of files) {
      if (this.#selected.has(k) || this.#o.manifest.files?.[k] === undefined) continue;
      const prepared = this.#opened ? this.#prepare(k) : Promise.resolve();
      prepared.catch(() => undefined); // its error comes back from the file's first write, or finish()
      this.#selected.set(k, prepared);
    }
  }

  get directBytes(): number {
    return this.#directBytes;
  }

  hasPiece(index: number): boolean {
    const k = treeLayout(this.#o.manifest).fileOfPiece(index);
    if (this.#done.has(k)) return true;
    const partial = this.#opened ? this.#openNow.get(k) : undefined;
    if (partial !== undefined) return partial.hasPiece(index - this.#first(k));
    return this.#kept.get(k)?.has(index - this.#first(k)) ?? false;
  }

  verifiedCount(): number {
    let n = 0;
    for (let i = 0; i < this.#o.manifest.pieces.length; i++) if (this.hasPiece(i)) n++;
    return n;
  }

  async writePiece(index: number, data: Buffer): Promise<void> {
    const k = treeLayout(this.#o.manifest).fileOfPiece(index);
    await this.#selected.get(k);
    if (this.#done.has(k)) return; // found at its place while its pieces were on the way
    await this.#use(k, async (partial) => {
      await partial.writePiece(index - this.#first(k), data);
      if (partial.verifiedCount() === this.#pieces(k)) await this.#finishFile(k, partial);
    });
  }

  async read(index: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const k = treeLayout(this.#o.manifest).fileOfPiece(index);
    if (!this.#done.has(k)) {
      if (!this.hasPiece(index)) throw new CoterieError('PIECE_UNAVAILABLE', `piece ${index} not here yet`);
      return this.#use(k, (partial) => partial.read(index - this.#first(k), offset, length, into));
    }
    // A finished file is read at its place.
    const buf = into ?? Buffer.allocUnsafe(length);
    const fh = await open((await this.#place(k)).path, 'r');
    try {
      const at = (index - this.#first(k)) * this.#o.manifest.pieceSize + offset;
      const { bytesRead } = await fh.read(buf, 0, length, at);
      if (bytesRead !== length)
        throw new CoterieError('PIECE_UNAVAILABLE', `piece ${index} is short on disk`);
      return buf;
    } finally {
      await fh.close();
    }
  }

  /**
   * Every selected file is in its place (each was named as its last piece was written), and
   * the directories they were named in are synced: once each here, not once per file.
   */
  async finish(): Promise<void> {
    await Promise.all(this.#selected.values());
    await Promise.all(this.#finishing.values());
    const left = [...this.#selected.keys()].filter((k) => !this.#done.has(k));
    if (left.length > 0) throw new CoterieError('INTERNAL', `finish with ${left.length} files missing`);
    const dirs = [...this.#unsyncedDirs];
    this.#unsyncedDirs.clear();
    await Promise.all(dirs.map(syncDirectory));
    await this.#dirs?.closeDirs();
  }

  /** Stops: each open file keeps its part and resume files for a later run. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled(this.#selected.values());
    await Promise.allSettled(this.#finishing.values());
    for (const partial of await this.#files.values()) await partial.close().catch(() => undefined);
    await this.#dirs?.closeDirs();
  }

  // ---- one file ---------------------------------------------------------------

  /** Partial files opened and not yet finished, by file. */
  readonly #openNow = new Map<number, PartialFile>();

  async #prepare(k: number): Promise<void> {
    const entry = this.#o.manifest.files![k]!;
    const place = await this.#place(k);
    // A root made this run holds nothing of an earlier one: only a resumed download looks.
    if (this.#o.resuming && (await treeFileState(place.path, entry.size)) === 'done') {
      this.#done.add(k);
      return;
    }
    if (entry.size === 0) {
      await writeEmptyFile(this.#dirs!, place, entry.executable === true);
      this.#done.add(k);
      return;
    }
    // A part file from an earlier run: opened now, so that its kept pieces count as had.
    const resume = join(place.dir.path, partNames(place.name).resume);
    if (
      this.#o.resuming &&
      (await lstat(resume).then(
        () => true,
        () => false,
      ))
    ) {
      await this.#use(k, async (partial) => {
        this.resumedPieces += partial.resumedPieces;
        if (partial.verifiedCount() === this.#pieces(k)) await this.#finishFile(k, partial);
      });
    }
  }

  /** Runs `fn` with file k's partial file open (opened, or opened again, if need be). */
  #use<T>(k: number, fn: (partial: PartialFile) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new CoterieError('DOWNLOAD_FAILED', 'download closed'));
    return this.#files.use(k, fn);
  }

  /** Closed for another file's sake: its verified pieces are remembered for hasPiece and the reopen. */
  async #closeToMakeRoom(k: number, partial: PartialFile): Promise<void> {
    const kept = new Bitfield(this.#pieces(k));
    for (let i = 0; i < kept.length; i++) if (partial.hasPiece(i)) kept.set(i);
    this.#kept.set(k, kept);
    this.#openNow.delete(k);
    await partial.close();
  }

  async #openPartial(k: number): Promise<PartialFile> {
    const { manifest } = this.#o;
    const entry = manifest.files![k]!;
    const first = this.#first(k);
    const place = await this.#place(k);
    const reopened = this.#kept.has(k);
    const partial = await openPartialFile({
      manifest: {
        version: MANIFEST_VERSION,
        size: entry.size,
        pieceSize: manifest.pieceSize,
        pieces: manifest.pieces.slice(first, first + this.#pieces(k)),
      },
      fileId: this.#o.fileId,
      dest: place.path,
      destDir: place.dir.identity,
      directIo: this.#o.directIo,
      preallocate: this.#o.preallocate,
      ...(this.#hashPiece === undefined ? {} : { hashPiece: this.#hashPiece }),
      clock: this.#o.clock,
      ...(this.#o.resumeIntervalMs === undefined ? {} : { resumeIntervalMs: this.#o.resumeIntervalMs }),
      ...(reopened ? { verified: this.#kept.get(k)! } : {}),
      fresh: !this.#o.resuming && !reopened,
      sharedDir: await this.#dirs!.borrow(place.dir),
    });
    this.#openNow.set(k, partial);
    this.#kept.delete(k);
    return partial;
  }

  /** The file's last piece is written: named at its place, its executable bit restored. */
  #finishFile(k: number, partial: PartialFile): Promise<void> {
    let finishing = this.#finishing.get(k);
    if (finishing === undefined) {
      finishing = (async () => {
        // The file's data is synced before its name; the names are synced by finish(), per directory.
        await partial.finish({ syncDir: false });
        this.#unsyncedDirs.add(dirname(partial.dest));
        this.#directBytes += partial.directBytes;
        if (this.#o.manifest.files![k]!.executable === true)
          await restoreExecutable(this.#dirs!, await this.#place(k));
        this.#done.add(k);
        this.#openNow.delete(k);
        this.#files.forget(k);
      })();
      this.#finishing.set(k, finishing);
    }
    return finishing;
  }

  #place(k: number): Promise<TreeFilePlace> {
    let place = this.#places.get(k);
    if (place === undefined) {
      place = this.#dirs!.place(this.#o.manifest.files![k]!.path);
      this.#places.set(k, place);
    }
    return place;
  }

  #first(k: number): number {
    return treeLayout(this.#o.manifest).firstPiece[k]!;
  }

  #pieces(k: number): number {
    const { firstPiece } = treeLayout(this.#o.manifest);
    return firstPiece[k + 1]! - firstPiece[k]!;
  }
}

/** fsync of a directory, best effort as DestinationDir.sync: not every platform can. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r').catch(() => undefined);
  await dir?.sync().catch(() => undefined);
  await dir?.close().catch(() => undefined);
}
