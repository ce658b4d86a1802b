/**
 * The one home of piece hashing: SHA-256 of a piece's bytes, on this thread
 * (`hashPiece`, `pieceDigest`) or in a worker thread (`startHashWorker`),
 * for manifest building, download verification, resume re-checks and a
 * seeder's re-check of a reported piece alike.
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CoterieError } from '../protocol/errors.js';

/** SHA-256 of a piece's bytes, the 32 raw bytes (a manifest's digests buffer takes these). */
export function pieceDigest(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** SHA-256 of a piece's bytes, lowercase hex (a manifest's `pieces` entry). */
export function hashPiece(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A run of a file's pieces for a worker to hash into a shared digests buffer (manifest building). */
export interface HashRunJob {
  path: string;
  size: number;
  pieceSize: number;
  /** Bytes per read: a whole number of pieces. */
  chunkBytes: number;
  /** count × 32 bytes; the worker writes piece i's digest at i × 32. */
  digests: SharedArrayBuffer;
  firstPiece: number;
  /** One past the run's last piece. */
  endPiece: number;
  /** The worker posts the bytes it hashed (a number) at least this often, and at the end. */
  progressStepBytes: number;
  /** Where this file's piece 0 goes among `digests` (a folder's files share one buffer); default 0. */
  digestBase?: number;
}

/** The files of a folder share for one worker to hash in turn, each as a whole run (tree-manifest.ts). */
export interface HashTreeJob {
  /** `mtimeMs` as the walk saw it: the worker refuses a file whose size or time moved since. */
  files: { path: string; size: number; mtimeMs: number; digestBase: number }[];
  pieceSize: number;
  chunkBytes: number;
  digests: SharedArrayBuffer;
  progressStepBytes: number;
  /**
   * The native addon's path (NATIVE_ADDON_PATH), whose sha256Pieces hashes many small files'
   * pieces in one call, two at a time; without it, or where it does not load, createHash.
   */
  addon?: string;
}

/**
 * Where the project's native addon is built (binding.gyp), from src/core/ and dist/core/ alike.
 * Optional: a worker that cannot load it hashes with createHash.
 */
export const NATIVE_ADDON_PATH = fileURLToPath(
  new URL('../../build/Release/coterie_native.node', import.meta.url),
);

/**
 * A piece in shared memory for a serving worker to hash; it answers `{ id, digest }` (hex).
 * The memory travels once per worker, with the first piece in it (`sab`, kept under `arena`);
 * later pieces name the arena only: posting a SharedArrayBuffer costs the sender a
 * serialisation and the worker a new object holding 16 MiB of external memory (which drives
 * its collector) per message, more than the message itself.
 */
export interface HashPieceMessage {
  id: number;
  arena: number;
  sab?: SharedArrayBuffer;
  offset: number;
  length: number;
}

/** Tells a serving worker to let go of arenas (their download is done with them). */
export interface ForgetArenasMessage {
  forget: number[];
}

/**
 * The worker's code, as plain JavaScript so that the same module works from
 * the TypeScript sources (tests) and the compiled dist/ without a second
 * entry file. Its `digest` is the worker's twin of pieceDigest. Given a
 * `run` (HashRunJob) it hashes that run of a file, reading by position into
 * one reused buffer with synchronous reads (the thread has nothing else to
 * do), and exits; without one it serves HashPieceMessages until terminated.
 */
const HASH_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const digest = (bytes) => createHash('sha256').update(bytes).digest();

// The bytes hashed since the last report, across a tree worker's files: one message per
// progressStepBytes, not one per file (a folder of 100,000 small files posted 100,000).
let sinceReport = 0;
function hashed(w, n) {
  sinceReport += n;
  if (sinceReport >= w.progressStepBytes) { parentPort.postMessage(sinceReport); sinceReport = 0; }
}
function flushProgress() {
  if (sinceReport > 0) parentPort.postMessage(sinceReport);
  sinceReport = 0;
}

// With the addon (a tree's worker), each chunk's pieces in one sha256Pieces call.
function readRun(w, fd, buf, addon) {
  const out = new Uint8Array(w.digests);
  const lengths = addon === undefined ? undefined : new Uint32Array(Math.ceil(w.chunkBytes / w.pieceSize));
  const end = Math.min(w.size, w.endPiece * w.pieceSize);
  for (let start = w.firstPiece * w.pieceSize; start < end; start += w.chunkBytes) {
    const want = Math.min(w.chunkBytes, end - start);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(fd, buf, got, want - got, start + got);
      if (n === 0) throw new Error('file shrank while it was hashed');
      got += n;
    }
    if (lengths !== undefined) {
      const count = Math.ceil(want / w.pieceSize);
      for (let i = 0; i < count; i++) lengths[i] = Math.min(w.pieceSize, want - i * w.pieceSize);
      addon.sha256Pieces(buf, lengths, count, out, ((w.digestBase || 0) + start / w.pieceSize) * 32);
    } else {
      for (let off = 0; off < want; off += w.pieceSize) {
        const piece = (start + off) / w.pieceSize;
        out.set(digest(buf.subarray(off, Math.min(off + w.pieceSize, want))), ((w.digestBase || 0) + piece) * 32);
      }
    }
    hashed(w, want);
  }
}

function hashRun(w) {
  const fd = fs.openSync(w.path, 'r');
  try {
    const end = Math.min(w.size, w.endPiece * w.pieceSize);
    readRun(w, fd, Buffer.allocUnsafe(Math.min(w.chunkBytes, end - w.firstPiece * w.pieceSize)));
  } finally {
    fs.closeSync(fd);
  }
  flushProgress();
}

// A folder's files in turn, opened without following a link (the walk saw a regular file; a
// link put there since is refused, not read through), and checked on the open descriptor once
// read: the size and time the walk saw, or the file changed between the walk and the end of
// its hashing. An empty file is only looked at.
//
// With the addon, files up to BATCH_BYTES are read one after another into one buffer and their
// pieces hashed together by one sha256Pieces call, two at a time where the CPU has the SHA
// extensions: no hash object per piece, and a 4 KiB file's piece pairs with its neighbour's.
// Their digests are consecutive (a slice's files are, and so are their pieces), so a batch
// writes one run of the shared buffer. A larger file is read and hashed a chunk at a time.
const BATCH_BYTES = 1024 * 1024;
const BATCH_PIECES = 4096;
function loadAddon(path) {
  try {
    const addon = path && require(path);
    return addon && typeof addon.sha256Pieces === 'function' ? addon : undefined;
  } catch {
    return undefined;
  }
}
function hashTree(t) {
  const addon = loadAddon(t.addon);
  const out = new Uint8Array(t.digests);
  const changed = (f, st) => !st.isFile() || st.size !== f.size || st.mtimeMs !== f.mtimeMs;
  const fail = (f) => { throw new Error(f.path + ' changed while it was hashed: share the folder again once it is stable'); };
  let buf = Buffer.allocUnsafe(0);
  const batch = addon === undefined ? undefined : Buffer.allocUnsafe(BATCH_BYTES);
  const lengths = new Uint32Array(BATCH_PIECES);
  let pieces = 0;
  let used = 0;
  let firstSlot = 0;
  const flush = () => {
    if (pieces > 0) addon.sha256Pieces(batch, lengths, pieces, out, firstSlot * 32);
    if (used > 0) hashed(t, used);
    pieces = 0;
    used = 0;
  };
  for (const f of t.files) {
    if (f.size === 0) {
      if (changed(f, fs.lstatSync(f.path))) fail(f);
      continue;
    }
    const count = Math.ceil(f.size / t.pieceSize);
    const batched = batch !== undefined && f.size <= batch.length && count <= BATCH_PIECES;
    if (batched && (used + f.size > batch.length || pieces + count > BATCH_PIECES || firstSlot + pieces !== f.digestBase))
      flush();
    if (pieces === 0) firstSlot = f.digestBase;
    const fd = fs.openSync(f.path, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW || 0));
    try {
      if (batched) {
        let got = 0;
        while (got < f.size) {
          const n = fs.readSync(fd, batch, used + got, f.size - got, got);
          if (n === 0) throw new Error('file shrank while it was hashed');
          got += n;
        }
        for (let i = 0; i < count; i++) lengths[pieces + i] = Math.min(t.pieceSize, f.size - i * t.pieceSize);
        pieces += count;
        used += f.size;
      } else {
        const w = { ...t, ...f, firstPiece: 0, endPiece: count };
        const need = Math.min(t.chunkBytes, f.size);
        if (buf.length < need) buf = Buffer.allocUnsafe(need);
        readRun(w, fd, buf, addon);
      }
      if (changed(f, fs.fstatSync(fd))) fail(f);
    } finally {
      fs.closeSync(fd);
    }
  }
  flush();
  flushProgress();
}

if (workerData && workerData.run) {
  hashRun(workerData.run);
} else if (workerData && workerData.tree) {
  hashTree(workerData.tree);
} else if (workerData && workerData.lstat) {
  // Before a folder is hashed: each path's size (-1: not a regular file), time and mode.
  const paths = workerData.lstat;
  const out = new Float64Array(paths.length * 3);
  for (let i = 0; i < paths.length; i++) {
    const st = fs.lstatSync(paths[i]);
    out[i * 3] = st.isFile() ? st.size : -1;
    out[i * 3 + 1] = st.mtimeMs;
    out[i * 3 + 2] = st.mode;
  }
  parentPort.postMessage(out, [out.buffer]);
} else {
  const arenas = new Map();
  parentPort.on('message', (m) => {
    if (m.forget) {
      for (const a of m.forget) arenas.delete(a);
      return;
    }
    if (m.sab) arenas.set(m.arena, m.sab);
    const bytes = new Uint8Array(arenas.get(m.arena), m.offset, m.length);
    parentPort.postMessage({ id: m.id, digest: digest(bytes).toString('hex') });
  });
}
`;

/** A hashing worker: hashes `run` and exits, or, without one, serves HashPieceMessages. */
export function startHashWorker(run?: HashRunJob): Worker {
  return new Worker(HASH_WORKER_SOURCE, { eval: true, workerData: run === undefined ? {} : { run } });
}

/** A worker hashing a folder's files (`tree`) and exiting; it posts hashed bytes as a run does. */
export function startTreeHashWorker(tree: HashTreeJob): Worker {
  return new Worker(HASH_WORKER_SOURCE, { eval: true, workerData: { tree } });
}

/**
 * A worker that lstats `paths` and exits, having posted one Float64Array of three numbers a
 * path: its size (-1 when it is not a regular file), mtimeMs and mode. A folder's files are
 * looked at this way, side by side on every core, before the piece size can be chosen.
 */
export function startLstatWorker(paths: readonly string[]): Worker {
  return new Worker(HASH_WORKER_SOURCE, { eval: true, workerData: { lstat: paths } });
}

/**
 * Waits for hashing workers that each hash their share and exit, passing on
 * their progress (or a lstat worker's answer); the first failure or an abort ends the wait, and every
 * worker is terminated either way (none keeps reading a file nobody waits for).
 */
export async function awaitHashWorkers<M = number>(
  workers: readonly Worker[],
  progress: (message: M) => void,
  signal: AbortSignal | undefined,
  what: string,
): Promise<void> {
  const runs = workers.map(
    (worker) =>
      new Promise<void>((resolve, reject) => {
        worker.on('message', (message: M) => progress(message));
        worker.once('error', (err) =>
          reject(new CoterieError('PATH_INVALID', `cannot hash ${what}: ${err.message}`, { cause: err })),
        );
        worker.once('exit', (code) =>
          code === 0
            ? resolve()
            : reject(new CoterieError('INTERNAL', `hash worker exited with code ${code}`)),
        );
      }),
  );
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal?.reason);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([Promise.all(runs), aborted]);
  } finally {
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
