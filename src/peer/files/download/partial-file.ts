import { constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Bitfield } from '../../../core/bitfield.js';
import { CoterieError } from '../../../protocol/errors.js';
import { pieceCount, pieceLength } from '../../../protocol/manifest.js';
import { type Clock, type ClockTimer, realClock } from '../../../wire/index.js';
import { PEER_DEFAULTS } from '../../config.js';
import { openDirect, REFUSED_DIRECT, skipBytes, writeAll } from './direct-writes.js';
import { IO_ALIGNMENT, isIoAligned } from './io-memory.js';
import type { PartialFile, PartialFileOptions } from './partial-file-types.js';
import { diskFullWriting, isNoSpace, preallocate } from './preallocate.js';
import { recheck } from './recheck.js';
import {
  loadResume,
  type PartNames,
  partNames,
  RESUME_FORMAT_VERSION,
  type ResumeState,
  saveResume,
} from './resume-file.js';
import { DestinationDir, type DirIdentity } from './safe-open.js';

export type { PartialFile, PartialFileOptions } from './partial-file-types.js';
export { RESUME_FORMAT_VERSION, type ResumeState } from './resume-file.js';
export type { DirIdentity } from './safe-open.js';

/**
 * The disk side of a download: `<dest>.part`, written by position as pieces
 * verify, and `<dest>.part.resume`, the bitfield of verified pieces, written
 * atomically (resume-file.ts) so that a killed download resumes without
 * refetching them. On reopen the kept pieces are hashed again before they
 * are trusted (the resume file may be newer than what reached the disk).
 * `finish()` fsyncs and gives the file its name `<dest>`; nothing ever
 * appears at `<dest>` before every piece is verified, and nothing that
 * appeared there meanwhile is replaced.
 *
 * Every name is reached through the destination directory opened once
 * (safe-open.ts): no symbolic link is followed, no existing file truncated.
 * A disk that fills (ENOSPC, EDQUOT) at any write, the fsync or the rename
 * fails the download with DISK_FULL and removes the part and resume files.
 *
 * With `directIo`, pieces in page-aligned memory (io-memory.ts) are written
 * through a second descriptor opened with O_DIRECT, past the page cache;
 * anything else (the short last piece, a file system that refuses O_DIRECT)
 * goes through the ordinary one. Linux keeps the two coherent: a direct
 * write drops any cached pages of its range.
 */

export async function openPartialFile(options: PartialFileOptions): Promise<PartialFile> {
  const { dest } = options;
  if (basename(dest) === '' || dest.endsWith('/')) {
    throw new CoterieError('PATH_INVALID', `destination ${dest} names a directory: give a file path`);
  }
  const shared = options.sharedDir;
  const dir = shared?.dir ?? (await DestinationDir.open(dirname(dest), options.destDir));
  try {
    return await openIn(dir, partNames(basename(dest)), options);
  } catch (err) {
    if (shared === undefined) await dir.close();
    else shared.release();
    throw err;
  }
}

async function openIn(
  dir: DestinationDir,
  names: PartNames,
  options: PartialFileOptions,
): Promise<PartialFile> {
  const { manifest, fileId } = options;
  const fresh = options.fresh === true;
  if (!fresh) await dir.checkDestination(names.dest, options.overwrite ?? false);
  // A link planted at any of our names is refused up front, whichever of them this run would touch.
  const present = fresh
    ? new Set<string>()
    : await dir.presentOf([names.part, names.resume, names.resumeTmp]);
  const count = pieceCount(manifest.size, manifest.pieceSize);
  const { verified } = options;
  const have = verified?.clone() ?? new Bitfield(count);
  const kept =
    verified ?? (present.has(names.resume) ? await loadResume(dir, names, fileId, manifest) : undefined);
  const existing = kept === undefined ? undefined : await dir.openExisting(names.part, fsConstants.O_RDWR);
  if (verified !== undefined && existing === undefined)
    throw new CoterieError('DOWNLOAD_FAILED', `${dir.shown(names.part)} went missing during the download`);
  const resuming = existing !== undefined;
  const handle = existing ?? (await dir.createOrEmpty(names.part));
  const partPath = dir.shown(names.part);
  // A file without a whole piece (a folder's small files) is written in one go: neither reserved
  // (a full disk still fails its write with DISK_FULL) nor given an O_DIRECT descriptor it would not use.
  const wholePiece = manifest.size >= manifest.pieceSize;
  let resumed = 0;
  try {
    if (verified === undefined && resuming) resumed = await recheck(handle, manifest, kept!, have, options);
    // A new file without a whole piece takes its size from its one write.
    if (resuming || wholePiece) await handle.truncate(manifest.size);
    if (options.preallocate === true && wholePiece) await preallocate(handle, partPath, manifest.size);
  } catch (err) {
    const e = isNoSpace(err) ? await diskFullWriting(handle, partPath, manifest.size) : err;
    await handle.close();
    // A part file made just now goes (it holds nothing); a resumed one keeps its verified pieces.
    if (!resuming) await dir.unlink(names.part);
    throw e;
  }
  const aligned = manifest.pieceSize % IO_ALIGNMENT === 0 && wholePiece;
  const direct = options.directIo === true && aligned ? await openDirect(dir, names.part, handle) : undefined;
  const leftovers = new Set([names.resume, names.resumeTmp].filter((n) => present.has(n)));
  const file = new DiskPartialFile(options, dir, names, handle, direct, have, resumed, leftovers);
  // The re-check may have dropped pieces: saved now (best effort). A new part file's first piece is saved at once,
  // or finishes a one-piece file, which needs no resume file; one reopened in this run was saved as it closed.
  if (resuming && verified === undefined) await file.saveResume().catch(() => undefined);
  return file;
}

class DiskPartialFile implements PartialFile {
  directBytes = 0;
  private lastSave = Number.NEGATIVE_INFINITY; // the first save (after the first piece) is not held back
  private saveTimer: ClockTimer | undefined;
  private saving: Promise<void> = Promise.resolve();
  private closed = false;
  /** Set when a write found the disk full: the download ends, and close() leaves nothing behind. */
  private diskFull: CoterieError | undefined;
  /** The resume file was removed to make room (a full disk): no more resume writes. */
  private resumeDropped = false;
  private readonly resumeIntervalMs: number;
  private writing = false;
  private readonly queue: Array<{
    index: number;
    data: Buffer;
    resolve: () => void;
    reject: (err: unknown) => void;
  }> = [];

  constructor(
    private readonly options: PartialFileOptions,
    private readonly dir: DestinationDir,
    private readonly names: PartNames,
    private readonly handle: FileHandle,
    /** The same file opened with O_DIRECT; dropped if the file system turns out to refuse it. */
    private direct: FileHandle | undefined,
    /** The verified pieces, which the resume file records. */
    private readonly have: Bitfield,
    readonly resumedPieces: number,
    /** The resume files that may exist (found at open, or written since): the only ones removed. */
    private readonly leftovers: Set<string>,
  ) {
    this.resumeIntervalMs = options.resumeIntervalMs ?? PEER_DEFAULTS.resumeSaveIntervalMs;
    this.clock = options.clock ?? realClock;
  }

  private readonly clock: Clock;

  get dest(): string {
    return this.options.dest;
  }
  get partPath(): string {
    return this.dir.shown(this.names.part);
  }

  get resumePath(): string {
    return this.dir.shown(this.names.resume);
  }

  get destDir(): DirIdentity {
    return this.dir.identity;
  }

  hasPiece(index: number): boolean {
    return this.have.has(index);
  }

  verifiedCount(): number {
    return this.have.count();
  }

  async writePiece(index: number, data: Buffer): Promise<void> {
    const m = this.options.manifest;
    if (this.diskFull !== undefined) throw this.diskFull;
    if (this.closed) throw new CoterieError('DOWNLOAD_FAILED', 'download closed');
    if (data.length !== pieceLength(m, index)) {
      throw new CoterieError(
        'INTERNAL',
        `piece ${index}: ${data.length} bytes, expected ${pieceLength(m, index)}`,
      );
    }
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ index, data, resolve, reject });
      if (!this.writing) void this.drainQueue();
    });
    this.have.set(index);
    this.scheduleSave();
  }

  /**
   * One writer at a time, taking every queued piece at once and writing each
   * run of adjacent pieces with one writev: far fewer hand-offs to the I/O
   * thread pool than a write per piece, which on a small machine costs more
   * than the copy into the page cache itself.
   */
  private async drainQueue(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0).sort((a, b) => a.index - b.index);
        let i = 0;
        while (i < batch.length) {
          let j = i + 1;
          while (j < batch.length && batch[j]!.index === batch[j - 1]!.index + 1) j++;
          const run = batch.slice(i, j);
          try {
            await this.writeRunMakingRoom(
              run[0]!.index,
              run.map((w) => w.data),
            );
            for (const w of run) w.resolve();
          } catch (err) {
            if (isNoSpace(err)) this.diskFull ??= await this.diskFullError();
            for (const w of run) w.reject(this.diskFull ?? err);
          }
          i = j;
        }
      }
    } finally {
      this.writing = false;
    }
  }

  /** writeRun, again after removing the resume file on a full disk: its block may be all that a file which exactly fits lacks. */
  private async writeRunMakingRoom(first: number, buffers: Buffer[]): Promise<void> {
    try {
      await this.writeRun(first, buffers);
    } catch (err) {
      if (!isNoSpace(err) || this.resumeDropped) throw err;
      this.resumeDropped = true;
      await this.saving.catch(() => undefined);
      await this.dir.unlink(this.names.resume);
      await this.writeRun(first, buffers);
    }
  }

  private diskFullError(): Promise<CoterieError> {
    return diskFullWriting(this.handle, this.partPath, this.options.manifest.size);
  }

  /** Writes adjacent pieces from `first` on: aligned stretches past the cache, the rest through it. */
  private async writeRun(first: number, buffers: Buffer[]): Promise<void> {
    const goesDirect = (b: Buffer) => this.direct !== undefined && isIoAligned(b);
    let position = first * this.options.manifest.pieceSize;
    let i = 0;
    while (i < buffers.length) {
      const direct = goesDirect(buffers[i]!);
      let j = i + 1;
      while (j < buffers.length && goesDirect(buffers[j]!) === direct) j++;
      const stretch = buffers.slice(i, j);
      if (!direct || !(await this.writeDirect(stretch, position))) {
        await writeAll(this.handle, stretch, position);
      }
      for (const b of stretch) position += b.length;
      i = j;
    }
  }

  /**
   * Writes `buffers` with O_DIRECT; false when the file system refused it (then direct writes stop
   * for this file and the caller writes through the cache). A short direct write (disk full,
   * signals) finishes through the cache: its remainder is no longer aligned.
   */
  private async writeDirect(buffers: Buffer[], position: number): Promise<boolean> {
    const direct = this.direct!;
    let bytesWritten: number;
    try {
      ({ bytesWritten } = await direct.writev(buffers, position));
    } catch (err) {
      if (!REFUSED_DIRECT.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      this.direct = undefined;
      await direct.close().catch(() => undefined);
      return false;
    }
    this.directBytes += bytesWritten;
    const total = buffers.reduce((n, b) => n + b.length, 0);
    if (bytesWritten < total) {
      await writeAll(this.handle, skipBytes(buffers, bytesWritten), position + bytesWritten);
    }
    return true;
  }

  /** Reads a block of a verified piece, into `into` (exactly `length` bytes) when given. */
  async read(index: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (!this.hasPiece(index)) throw new CoterieError('PIECE_UNAVAILABLE', `piece ${index} not here yet`);
    const buf = into ?? Buffer.allocUnsafe(length);
    if (buf.length !== length) throw new RangeError(`read into ${buf.length} bytes, want ${length}`);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.handle.read(
        buf,
        done,
        length - done,
        index * this.options.manifest.pieceSize + offset + done,
      );
      if (bytesRead === 0) throw new CoterieError('INTERNAL', 'partial file shorter than expected');
      done += bytesRead;
    }
    return buf;
  }

  private scheduleSave(): void {
    if (this.saveTimer || this.closed) return;
    const wait = Math.max(0, this.lastSave + this.resumeIntervalMs - this.clock.now());
    // A pending save must not keep the process alive (the clock's timers are unref'd); close() writes the final state.
    this.saveTimer = this.clock.setTimeout(() => {
      this.saveTimer = undefined;
      void this.saveResume().catch(() => {
        // A failed resume write costs only refetching on restart; the next save retries.
      });
    }, wait);
  }

  /** Writes the resume file (resume-file.ts), one write at a time. */
  saveResume(): Promise<void> {
    this.saving = this.saving
      .catch(() => undefined)
      .then(async () => {
        if (this.resumeDropped || this.diskFull !== undefined) return;
        this.lastSave = this.clock.now();
        this.leftovers.add(this.names.resume).add(this.names.resumeTmp);
        const state: ResumeState = {
          version: RESUME_FORMAT_VERSION,
          fileId: this.options.fileId,
          size: this.options.manifest.size,
          pieceSize: this.options.manifest.pieceSize,
          bitfield: this.have.toBuffer().toString('base64'),
        };
        await saveResume(this.dir, this.names, state);
      });
    return this.saving;
  }

  async finish(options: { syncDir?: boolean } = {}): Promise<void> {
    if (!this.have.isComplete()) {
      throw new CoterieError(
        'INTERNAL',
        `finish with ${this.have.length - this.have.count()} pieces missing`,
      );
    }
    this.stopTimer();
    this.closed = true;
    await this.saving.catch(() => undefined);
    const { names } = this;
    try {
      // fsync works on the file, whichever descriptor: one covers the direct writes too.
      await this.handle.sync();
      const file = await this.handle.stat();
      await this.direct?.close();
      await this.handle.close();
      if (this.options.overwrite === true) await this.dir.rename(names.part, names.dest);
      else await this.dir.placeNoReplace(names.part, names.dest, file);
    } catch (err) {
      // Nothing at dest (placeNoReplace takes back what it made), and nothing beside it.
      const e = isNoSpace(err) ? await this.diskFullError() : err;
      await this.discard();
      throw e;
    }
    for (const name of this.leftovers) await this.dir.unlink(name).catch(() => undefined);
    if (options.syncDir !== false) await this.dir.sync();
    await this.closeDir();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.stopTimer();
    this.closed = true;
    if (this.diskFull !== undefined) return this.discard();
    await this.handle.sync().catch(() => undefined);
    await this.direct?.close().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    await this.saveResume().catch(() => undefined);
    await this.closeDir();
  }

  /** Removes the part file and its resume files (a download that cannot fit ends with nothing left). */
  private async discard(): Promise<void> {
    await this.saving.catch(() => undefined);
    await this.direct?.close().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    for (const name of [this.names.part, ...this.leftovers])
      await this.dir.unlink(name).catch(() => undefined);
    await this.closeDir();
  }

  /** Closes the directory, or gives it back to the folder download that shares it. */
  private async closeDir(): Promise<void> {
    if (this.options.sharedDir === undefined) await this.dir.close();
    else this.options.sharedDir.release();
  }

  private stopTimer(): void {
    this.saveTimer?.cancel();
    this.saveTimer = undefined;
  }
}
