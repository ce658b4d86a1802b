import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { type FileHandle, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { CoterieError } from '../../protocol/errors.js';
import { type Manifest, pieceCount, pieceLength } from '../../protocol/manifest.js';
import { AlignedSlotPool, IO_ALIGNMENT, isIoAligned } from './io-memory.js';
import { preallocate } from './preallocate.js';

/**
 * The disk side of a download: `<dest>.part`, written by position as pieces
 * verify, and `<dest>.part.resume`, the bitfield of verified pieces, written
 * atomically (temp file + rename) so that a killed download resumes without
 * refetching them. On reopen the kept pieces are hashed again before they
 * are trusted (the resume file may be newer than what reached the disk).
 * `finish()` fsyncs and renames to `<dest>`; nothing ever appears at
 * `<dest>` before every piece is verified.
 *
 * With `directIo`, pieces in page-aligned memory (io-memory.ts) are written
 * through a second descriptor opened with O_DIRECT, past the page cache;
 * anything else (the short last piece, a file system that refuses O_DIRECT)
 * goes through the ordinary one. Linux keeps the two coherent: a direct
 * write drops any cached pages of its range.
 */

export const RESUME_FORMAT_VERSION = 1;

/** The resume file's JSON: small (a bitfield of ≤ 65,536 bits is ≤ 11 KiB base64). */
export interface ResumeState {
  version: 1;
  fileId: string;
  size: number;
  pieceSize: number;
  /** Verified pieces, one bit each, most significant bit first, base64. */
  bitfield: string;
}

export interface PartialFileOptions {
  manifest: Manifest;
  fileId: string;
  dest: string;
  overwrite?: boolean;
  /** Minimum time between resume-file writes while downloading. */
  resumeIntervalMs?: number;
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
  /** Reserve the part file's blocks when it opens (preallocate.ts; default false): DISK_FULL when it cannot fit. */
  preallocate?: boolean;
}

export interface PartialFile {
  readonly dest: string;
  readonly partPath: string;
  readonly resumePath: string;
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
  /** Every piece verified: fsync, rename to dest, remove the resume file. */
  finish(): Promise<void>;
  /** Stops, saving the resume state; leaves nothing at dest. */
  close(): Promise<void>;
}

export async function openPartialFile(options: PartialFileOptions): Promise<PartialFile> {
  const { manifest, fileId, dest } = options;
  await checkDestination(dest, options.overwrite ?? false);
  const partPath = `${dest}.part`;
  const resumePath = `${dest}.part.resume`;
  const count = pieceCount(manifest.size, manifest.pieceSize);
  const have = new Uint8Array(count);

  const kept = await loadResume(resumePath, fileId, manifest);
  let handle: FileHandle;
  let resumed = 0;
  const resuming = kept !== undefined && (await isFile(partPath));
  if (resuming) {
    handle = await open(partPath, fsConstants.O_RDWR);
    resumed = await recheck(handle, manifest, kept, have, options);
  } else {
    handle = await open(partPath, 'w+');
  }
  try {
    await handle.truncate(manifest.size);
    if (options.preallocate === true) await preallocate(handle, partPath, manifest.size);
  } catch (err) {
    await handle.close();
    // A part file made just now goes (it holds nothing); a resumed one keeps its verified pieces.
    if (!resuming) await rm(partPath, { force: true });
    throw err;
  }
  const direct =
    options.directIo === true && manifest.pieceSize % IO_ALIGNMENT === 0
      ? await openDirect(partPath)
      : undefined;
  const file = new DiskPartialFile(
    options,
    handle,
    direct,
    have,
    partPath,
    resumePath,
    resumed,
    options.resumeIntervalMs ?? 1000,
  );
  await file.saveResume();
  return file;
}

class DiskPartialFile implements PartialFile {
  private verified: number;
  directBytes = 0;
  private lastSave = 0;
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private closed = false;
  private writing = false;
  private readonly queue: Array<{
    index: number;
    data: Buffer;
    resolve: () => void;
    reject: (err: unknown) => void;
  }> = [];

  constructor(
    private readonly options: PartialFileOptions,
    private readonly handle: FileHandle,
    /** The same file opened with O_DIRECT; dropped if the file system turns out to refuse it. */
    private direct: FileHandle | undefined,
    private readonly have: Uint8Array,
    readonly partPath: string,
    readonly resumePath: string,
    readonly resumedPieces: number,
    private readonly resumeIntervalMs: number,
  ) {
    this.verified = have.reduce((n, v) => n + v, 0);
  }

  get dest(): string {
    return this.options.dest;
  }

  hasPiece(index: number): boolean {
    return this.have[index] === 1;
  }

  verifiedCount(): number {
    return this.verified;
  }

  async writePiece(index: number, data: Buffer): Promise<void> {
    const m = this.options.manifest;
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
    if (this.have[index] === 0) {
      this.have[index] = 1;
      this.verified++;
    }
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
            await this.writeRun(
              run[0]!.index,
              run.map((w) => w.data),
            );
            for (const w of run) w.resolve();
          } catch (err) {
            for (const w of run) w.reject(err);
          }
          i = j;
        }
      }
    } finally {
      this.writing = false;
    }
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
   * Writes `buffers` with O_DIRECT; false when the file system refused it
   * (then direct writes stop for this file and the caller writes through the
   * cache). A short direct write (disk full, signals) finishes through the
   * cache: its remainder is no longer aligned.
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
    const wait = Math.max(0, this.lastSave + this.resumeIntervalMs - Date.now());
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.saveResume().catch(() => {
        // A failed resume write costs only refetching on restart; the next save retries.
      });
    }, wait);
    // A pending save must not keep the process alive; close() writes the final state.
    this.saveTimer.unref();
  }

  /** Writes the resume file atomically: temp file, fsync-free rename (pieces are re-checked on load). */
  saveResume(): Promise<void> {
    this.saving = this.saving.then(async () => {
      this.lastSave = Date.now();
      const state: ResumeState = {
        version: RESUME_FORMAT_VERSION,
        fileId: this.options.fileId,
        size: this.options.manifest.size,
        pieceSize: this.options.manifest.pieceSize,
        bitfield: packBits(this.have).toString('base64'),
      };
      const tmp = `${this.resumePath}.tmp`;
      await writeFile(tmp, JSON.stringify(state));
      await rename(tmp, this.resumePath);
    });
    return this.saving;
  }

  async finish(): Promise<void> {
    if (this.verified !== this.have.length) {
      throw new CoterieError('INTERNAL', `finish with ${this.have.length - this.verified} pieces missing`);
    }
    this.stopTimer();
    this.closed = true;
    await this.saving.catch(() => undefined);
    // fsync works on the file, whichever descriptor: one covers the direct writes too.
    await this.handle.sync();
    await this.direct?.close();
    await this.handle.close();
    await rename(this.partPath, this.options.dest);
    await rm(this.resumePath, { force: true });
    await fsyncDir(dirname(this.options.dest));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.stopTimer();
    this.closed = true;
    await this.handle.sync().catch(() => undefined);
    await this.direct?.close().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    await this.saveResume().catch(() => undefined);
  }

  private stopTimer(): void {
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
  }
}

async function checkDestination(dest: string, overwrite: boolean): Promise<void> {
  if (basename(dest) === '' || dest.endsWith('/')) {
    throw new CoterieError('PATH_INVALID', `destination ${dest} names a directory: give a file path`);
  }
  const dir = await stat(dirname(dest)).catch(() => undefined);
  if (!dir?.isDirectory()) {
    throw new CoterieError('PATH_INVALID', `directory ${dirname(dest)} does not exist: create it first`);
  }
  const existing = await stat(dest).catch(() => undefined);
  if (existing) {
    if (!existing.isFile())
      throw new CoterieError('PATH_INVALID', `${dest} exists and is not a regular file`);
    if (!overwrite) {
      throw new CoterieError('DESTINATION_EXISTS', `${dest} exists: pick another path or ask to overwrite`);
    }
  }
}

async function loadResume(path: string, fileId: string, m: Manifest): Promise<Uint8Array | undefined> {
  let state: Partial<ResumeState> | null;
  try {
    state = JSON.parse(await readFile(path, 'utf8')) as Partial<ResumeState> | null;
  } catch {
    return undefined; // none, or unreadable: start over
  }
  const count = pieceCount(m.size, m.pieceSize);
  if (
    // Damaged (`null`, a number, a list…) or another file's: start over.
    typeof state !== 'object' ||
    state === null ||
    state.version !== RESUME_FORMAT_VERSION ||
    state.fileId !== fileId ||
    state.size !== m.size ||
    state.pieceSize !== m.pieceSize ||
    typeof state.bitfield !== 'string'
  ) {
    return undefined;
  }
  const packed = Buffer.from(state.bitfield, 'base64');
  if (packed.length !== Math.ceil(count / 8)) return undefined;
  return unpackBits(packed, count);
}

/** Kept pieces read ahead of their hashes during a re-check (each a piece of memory). */
const RECHECK_DEPTH = 3;

/**
 * Re-hashes every piece the resume file claims; keeps only those that match.
 * Reads run ahead of the hashes (up to RECHECK_DEPTH pieces), in shared
 * memory that a hashing worker reads without a copy.
 */
async function recheck(
  handle: FileHandle,
  m: Manifest,
  claimed: Uint8Array,
  have: Uint8Array,
  options: Pick<PartialFileOptions, 'onRecheck' | 'hashPiece'>,
): Promise<number> {
  const hashPiece =
    options.hashPiece ?? ((data: Buffer) => Promise.resolve(createHash('sha256').update(data).digest('hex')));
  const size = (await handle.stat()).size;
  const total = claimed.reduce((n, v) => n + v, 0);
  const buffers = new AlignedSlotPool(m.pieceSize);
  const hashing = new Set<Promise<void>>();
  let done = 0;
  let kept = 0;
  for (let i = 0; i < claimed.length; i++) {
    if (!claimed[i]) continue;
    const len = pieceLength(m, i);
    if (i * m.pieceSize + len > size) {
      options.onRecheck?.(++done, total);
      continue;
    }
    while (hashing.size >= RECHECK_DEPTH) await Promise.race(hashing);
    const buf = buffers.take().subarray(0, len);
    const { bytesRead } = await handle.read(buf, 0, len, i * m.pieceSize);
    // A piece that cannot be hashed (short read, worker gone) is not kept: refetched, never trusted.
    const check = (bytesRead === len ? hashPiece(buf) : Promise.resolve(''))
      .catch(() => '')
      .then((digest) => {
        if (digest === m.pieces[i]) {
          have[i] = 1;
          kept++;
        }
        options.onRecheck?.(++done, total);
      })
      .finally(() => {
        buffers.give(buf);
        hashing.delete(check);
      });
    hashing.add(check);
  }
  await Promise.all(hashing);
  return kept;
}

export function packBits(bits: Uint8Array): Buffer {
  const out = Buffer.alloc(Math.ceil(bits.length / 8));
  for (let i = 0; i < bits.length; i++) if (bits[i]) out[i >> 3]! |= 0x80 >> (i & 7);
  return out;
}

export function unpackBits(packed: Buffer, count: number): Uint8Array {
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = (packed[i >> 3]! >> (7 - (i & 7))) & 1;
  return out;
}

/** What a file system answers to an O_DIRECT write it cannot do (alignment, or no support at all). */
const REFUSED_DIRECT = new Set(['EINVAL', 'EOPNOTSUPP', 'ENOTSUP']);

/** Writes every byte of `buffers` at `position`, continuing after short writes. */
async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, position);
    position += bytesWritten;
    pending = skipBytes(pending, bytesWritten);
  }
}

/** `buffers` without their first `skip` bytes. */
function skipBytes(buffers: Buffer[], skip: number): Buffer[] {
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

/** The file opened again with O_DIRECT, or undefined where the platform or file system has none. */
async function openDirect(path: string): Promise<FileHandle | undefined> {
  const flag = fsConstants.O_DIRECT;
  if (flag === undefined) return undefined;
  try {
    return await open(path, fsConstants.O_RDWR | flag);
  } catch {
    return undefined; // tmpfs before Linux 6.6 and others: EINVAL; written through the cache then
  }
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

/** Makes the rename durable; not every platform can open a directory, which is fine. */
async function fsyncDir(dir: string): Promise<void> {
  try {
    const h = await open(dir, 'r');
    await h.sync().finally(() => h.close());
  } catch {
    // best effort
  }
}
