/**
 * Building a file's manifest: SHA-256 of every piece, streamed from disk with
 * bounded memory, on every core for large files.
 *
 * Large files are split into one contiguous run of pieces per worker thread;
 * each worker opens the file itself, reads its run by position into one
 * reused buffer and writes each 32-byte digest straight into a shared
 * buffer, so no file data crosses threads and the main thread stays free.
 * Small files are hashed on the main thread, where starting workers would
 * cost more than it saves.
 */
import { open, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';
import { CoterieError } from '../protocol/errors.js';
import {
  choosePieceSize,
  computeFileId,
  MANIFEST_VERSION,
  MAX_FILE_SIZE_BYTES,
  type Manifest,
  pieceCount,
  pieceLength,
  validateManifest,
} from '../protocol/manifest.js';
import { awaitHashWorkers, hashPiece, pieceDigest, startHashWorker } from './piece-hash.js';

export { hashPiece };

export interface CreateManifestOptions {
  /** Called as hashing advances (at most every PROGRESS_STEP_BYTES per thread, and at the end). */
  onProgress?: (hashedBytes: number, totalBytes: number) => void;
  /** Worker threads for large files; default: one per core. 1 hashes on the main thread. */
  workers?: number;
  /** Piece size override (a valid power of two); default choosePieceSize(size). For tests. */
  pieceSize?: number;
  /** Files at least this large use worker threads. */
  workerThresholdBytes?: number;
  /** Stops hashing (workers terminated, file closed); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
}

export const MANIFEST_DEFAULTS = Object.freeze({
  // Below this, two workers' start-up (~30 ms each) costs more than the second core saves.
  workerThresholdBytes: 64 * 1024 * 1024,
  // Each read covers whole pieces and at least this much, so syscalls stay rare for small pieces.
  readChunkBytes: 4 * 1024 * 1024,
  // Progress granularity per thread: a bar updates ~10 times a second at 1.5 GiB/s.
  progressStepBytes: 64 * 1024 * 1024,
});

export interface ManifestResult {
  manifest: Manifest;
  /** Lowercase hex SHA-256 of the manifest's canonical encoding. */
  fileId: string;
}

/** True when `data` is piece `index` of the manifest: right length and right hash. */
export function verifyPiece(manifest: Manifest, index: number, data: Uint8Array): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= manifest.pieces.length) return false;
  if (data.length !== pieceLength(manifest, index)) return false;
  return hashPiece(data) === manifest.pieces[index];
}

/**
 * Hashes the file at `path` into a manifest. Deterministic: the same bytes
 * give the same manifest and file id on any machine, whatever the number of
 * workers. Throws PATH_INVALID when the path is not a readable regular file
 * or the file changes while it is read.
 */
export async function createManifest(
  path: string,
  options: CreateManifestOptions = {},
): Promise<ManifestResult> {
  const before = await statRegular(path);
  const size = before.size;
  if (size > MAX_FILE_SIZE_BYTES) {
    throw new CoterieError('PATH_INVALID', `${path} is larger than the ${MAX_FILE_SIZE_BYTES}-byte maximum`);
  }
  const pieceSize = options.pieceSize ?? choosePieceSize(size);
  const count = pieceCount(size, pieceSize);
  // Validates an overridden piece size (and the piece count) before any work.
  validateManifest({
    version: MANIFEST_VERSION,
    size,
    pieceSize,
    pieces: new Array(count).fill('0'.repeat(64)),
  });

  const digests = new Uint8Array(new SharedArrayBuffer(count * 32));
  const job: HashJob = {
    path,
    size,
    pieceSize,
    digests,
    chunkBytes: Math.max(pieceSize, Math.floor(MANIFEST_DEFAULTS.readChunkBytes / pieceSize) * pieceSize),
  };
  let hashed = 0;
  const progress = (bytes: number) => {
    hashed += bytes;
    options.onProgress?.(hashed, size);
  };
  const workers = Math.max(1, Math.min(options.workers ?? availableParallelism(), count));
  const threshold = options.workerThresholdBytes ?? MANIFEST_DEFAULTS.workerThresholdBytes;
  options.signal?.throwIfAborted();
  if (workers > 1 && size >= threshold) await hashWithWorkers(job, workers, progress, options.signal);
  else await hashOnMainThread(job, progress, options.signal);

  const after = await statRegular(path);
  if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
    throw new CoterieError(
      'PATH_INVALID',
      `${path} changed while it was hashed: share it again once it is stable`,
    );
  }
  if (hashed !== size) options.onProgress?.(size, size);
  const pieces: string[] = [];
  for (let i = 0; i < count; i++) pieces.push(Buffer.from(digests.buffer, i * 32, 32).toString('hex'));
  const manifest: Manifest = { version: MANIFEST_VERSION, size, pieceSize, pieces };
  return { manifest, fileId: computeFileId(manifest) };
}

async function statRegular(path: string) {
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new CoterieError('PATH_INVALID', `${path} is not a regular file`);
    return s;
  } catch (err) {
    throw CoterieError.from(err, 'PATH_INVALID', (text) => `cannot read ${path}: ${text}`);
  }
}

interface HashJob {
  path: string;
  size: number;
  pieceSize: number;
  /** count × 32 bytes, shared with the workers. */
  digests: Uint8Array;
  /** Bytes per read: a whole number of pieces. */
  chunkBytes: number;
}

async function hashOnMainThread(
  job: HashJob,
  progress: (bytes: number) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { size, pieceSize, chunkBytes, digests } = job;
  if (size === 0) return;
  const fh = await open(job.path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(chunkBytes, size));
    let sinceReport = 0;
    for (let start = 0; start < size; start += chunkBytes) {
      signal?.throwIfAborted();
      const want = Math.min(chunkBytes, size - start);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await fh.read(buf, got, want - got, start + got);
        if (bytesRead === 0) throw new CoterieError('PATH_INVALID', `${job.path} shrank while it was hashed`);
        got += bytesRead;
      }
      for (let off = 0; off < want; off += pieceSize) {
        const piece = (start + off) / pieceSize;
        const end = Math.min(off + pieceSize, want);
        digests.set(pieceDigest(buf.subarray(off, end)), piece * 32);
      }
      sinceReport += want;
      if (sinceReport >= MANIFEST_DEFAULTS.progressStepBytes || start + want === size) {
        progress(sinceReport);
        sinceReport = 0;
      }
    }
  } finally {
    await fh.close();
  }
}

async function hashWithWorkers(
  job: HashJob,
  workers: number,
  progress: (bytes: number) => void,
  signal: AbortSignal | undefined,
): Promise<void> {
  const count = job.digests.length / 32;
  // Contiguous runs, so each worker reads sequentially and the kernel's read-ahead works for it.
  const per = Math.ceil(count / workers);
  const started: Worker[] = [];
  for (let first = 0; first < count; first += per) {
    // Each worker mirrors hashOnMainThread over its run [firstPiece, endPiece).
    started.push(
      startHashWorker({
        path: job.path,
        size: job.size,
        pieceSize: job.pieceSize,
        chunkBytes: job.chunkBytes,
        digests: job.digests.buffer as SharedArrayBuffer,
        firstPiece: first,
        endPiece: Math.min(count, first + per),
        progressStepBytes: MANIFEST_DEFAULTS.progressStepBytes,
      }),
    );
  }
  await awaitHashWorkers(started, progress, signal, job.path);
}
