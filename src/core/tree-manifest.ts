/**
 * Building a folder share's manifest (version 2, see protocol/manifest.ts):
 * the directory is walked once, every entry checked (regular files and
 * directories only, names any system can write), and the files' pieces are
 * hashed by worker threads, one per core, each taking a contiguous slice of
 * the files of about the same number of bytes and writing its digests
 * straight into one shared buffer (with the native addon's sha256Pieces,
 * many small files' pieces a call, two at a time: piece-hash.ts).
 */
import { type Dirent, Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { CoterieError } from '../protocol/errors.js';
import {
  choosePieceSize,
  computeFileId,
  MAX_PIECE_SIZE_BYTES,
  MAX_PIECES,
  MAX_TREE_FILES,
  MAX_TREE_PATH_BYTES,
  type Manifest,
  pieceCount,
  TREE_MANIFEST_VERSION,
  type TreeEntry,
  treeLayout,
  validateManifest,
} from '../protocol/manifest.js';
import { foldCase, treePathProblem } from '../protocol/tree-paths.js';
import { MANIFEST_DEFAULTS, type ManifestResult } from './manifest.js';
import { awaitHashWorkers, NATIVE_ADDON_PATH, startLstatWorker, startTreeHashWorker } from './piece-hash.js';

/** A file of the folder being shared, as found on disk. */
export interface TreeSourceFile extends TreeEntry {
  /** Its path on this machine. */
  abs: string;
  mtimeMs: number;
}

export interface TreeManifestOptions {
  onProgress?: (hashedBytes: number, totalBytes: number) => void;
  /** Worker threads; default one per core. */
  workers?: number;
  /** Piece size override (for tests); default the smallest that keeps the piece count within MAX_PIECES. */
  pieceSize?: number;
  signal?: AbortSignal;
  /** false: hash with createHash only, not the native addon's sha256Pieces (tests compare the two). */
  native?: boolean;
}

/** Below this many files a folder's lstats take one worker: starting another costs more (~30 ms). */
const LSTAT_FILES_PER_WORKER = 4096;

/**
 * Every regular file under `root`, with paths relative to it in canonical
 * (code unit) order. PATH_INVALID for a symbolic link, a special file, a name
 * another system could not write (tree-paths.ts), two names equal ignoring
 * case, an empty folder or one too large for a manifest.
 *
 * The folders are read here, their entries' types (d_type) sparing a subfolder
 * or a link its lstat; the files' lstats (size, time, mode) are done by worker
 * threads, one per core: 100,000 of them one at a time on this thread kept one
 * core half-busy for seconds, most of it waiting on the threadpool.
 */
export async function scanTree(
  root: string,
  workers: number = availableParallelism(),
): Promise<TreeSourceFile[]> {
  const out: TreeSourceFile[] = [];
  const found: { path: string; abs: string }[] = [];
  const add = (f: { path: string; abs: string }, st: { size: number; mtimeMs: number; mode: number }) => {
    out.push({
      ...f,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ...((st.mode & 0o111) !== 0 ? { executable: true as const } : {}),
    });
  };
  const tooMany = () =>
    new CoterieError('PATH_INVALID', `${root} holds more than ${MAX_TREE_FILES} files: share it in parts`);
  const walk = async (dir: string, rel: string): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      throw CoterieError.from(err, 'PATH_INVALID', (text) => `cannot read ${dir}: ${text}`);
    }
    for (const entry of entries) {
      const name = entry.name;
      const path = rel === '' ? name : `${rel}/${name}`;
      const abs = join(dir, name);
      const problem = treePathProblem(path);
      if (problem !== undefined)
        throw new CoterieError('PATH_INVALID', `cannot share ${abs}: ${problem}: rename it`);
      // An entry of a type the folder does not say (some filesystems leave it out) is looked at here.
      const st = entry.isFile() || entry.isDirectory() || entry.isSymbolicLink() ? entry : await lstat(abs);
      if (st.isSymbolicLink()) {
        throw new CoterieError(
          'PATH_INVALID',
          `${abs} is a symbolic link: a folder share holds regular files only`,
        );
      }
      if (st.isDirectory()) await walk(abs, path);
      else if (st.isFile()) {
        if (st instanceof Stats) add({ path, abs }, st);
        else found.push({ path, abs });
        if (found.length + out.length > MAX_TREE_FILES) throw tooMany();
      } else throw new CoterieError('PATH_INVALID', `${abs} is not a regular file or a folder`);
    }
  };
  await walk(root, '');
  await lstatFiles(found, workers, (f, st) => {
    if (st.size < 0)
      throw new CoterieError('PATH_INVALID', `${f.abs} is no longer a regular file: share the folder again`);
    add(f, st);
  });
  if (out.length === 0) throw new CoterieError('PATH_INVALID', `${root} holds no files to share`);
  // Refused now rather than after hashing: the manifest would be too large to share.
  const pathBytes = out.reduce((n, f) => n + Buffer.byteLength(f.path), 0);
  if (pathBytes > MAX_TREE_PATH_BYTES) {
    throw new CoterieError(
      'PATH_INVALID',
      `the paths under ${root} take ${pathBytes} bytes, more than ${MAX_TREE_PATH_BYTES}: share it in parts`,
    );
  }
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const seen = new Map<string, string>();
  for (const f of out) {
    const other = seen.get(foldCase(f.path));
    if (other !== undefined) {
      throw new CoterieError('PATH_INVALID', `'${other}' and '${f.path}' differ only in case: rename one`);
    }
    seen.set(foldCase(f.path), f.path);
  }
  return out;
}

/** The smallest default piece size whose file-aligned pieces fit in MAX_PIECES. */
export function chooseTreePieceSize(files: readonly { size: number }[]): number {
  const total = files.reduce((n, f) => n + f.size, 0);
  let pieceSize = choosePieceSize(total);
  const count = (ps: number) => files.reduce((n, f) => n + pieceCount(f.size, ps), 0);
  while (count(pieceSize) > MAX_PIECES && pieceSize < MAX_PIECE_SIZE_BYTES) pieceSize *= 2;
  return pieceSize;
}

/** Hashes a folder into its manifest; deterministic whatever the number of workers. */
export async function createTreeManifest(
  root: string,
  options: TreeManifestOptions = {},
): Promise<ManifestResult & { files: TreeSourceFile[] }> {
  const files = await scanTree(root, options.workers ?? availableParallelism());
  const pieceSize = options.pieceSize ?? chooseTreePieceSize(files);
  const size = files.reduce((n, f) => n + f.size, 0);
  const entries: TreeEntry[] = files.map((f) => ({
    path: f.path,
    size: f.size,
    ...(f.executable === true ? { executable: true as const } : {}),
  }));
  const draft: Manifest = { version: TREE_MANIFEST_VERSION, size, pieceSize, pieces: [], files: entries };
  const layout = treeLayout(draft);
  const count = layout.firstPiece[files.length]!;
  if (count > MAX_PIECES) {
    throw new CoterieError(
      'PATH_INVALID',
      `${root} needs ${count} pieces, more than the ${MAX_PIECES} a share may have`,
    );
  }
  const digests = new Uint8Array(new SharedArrayBuffer(count * 32));
  let hashed = 0;
  const progress = (bytes: number) => {
    hashed += bytes;
    options.onProgress?.(hashed, size);
  };
  options.signal?.throwIfAborted();
  // Each worker checks its files on their open descriptors once hashed (piece-hash.ts): a file
  // that changed since the walk is refused there, with no second stat of every path here.
  const jobs = files.map((f, k) => ({
    path: f.abs,
    size: f.size,
    mtimeMs: f.mtimeMs,
    digestBase: layout.firstPiece[k]!,
  }));
  await hashSlices(slicesOf(jobs, options.workers ?? availableParallelism()), {
    pieceSize,
    digests,
    progress,
    signal: options.signal,
    native: options.native !== false,
  });
  if (hashed !== size) options.onProgress?.(size, size);
  const pieces: string[] = new Array(count);
  for (let i = 0; i < count; i++) pieces[i] = Buffer.from(digests.buffer, i * 32, 32).toString('hex');
  const manifest = validateManifest({ ...draft, pieces });
  return { manifest, fileId: computeFileId(manifest), files };
}

type HashFile = { path: string; size: number; mtimeMs: number; digestBase: number };

/** Contiguous slices of about equal bytes, at most `workers` of them (fewer for small folders). */
function slicesOf(files: HashFile[], workers: number): HashFile[][] {
  const total = files.reduce((n, f) => n + f.size, 0);
  // A worker costs ~30 ms to start: below a few MiB per extra worker, one does it sooner.
  const n = Math.max(1, Math.min(workers, files.length, Math.ceil(total / (8 * 1024 * 1024))));
  const target = total / n;
  const slices: HashFile[][] = [[]];
  let bytes = 0;
  for (const f of files) {
    if (bytes >= target * slices.length && slices.length < n) slices.push([]);
    slices[slices.length - 1]!.push(f);
    bytes += f.size;
  }
  return slices.filter((s) => s.length > 0);
}

async function hashSlices(
  slices: HashFile[][],
  o: {
    pieceSize: number;
    digests: Uint8Array;
    progress: (bytes: number) => void;
    signal: AbortSignal | undefined;
    native: boolean;
  },
): Promise<void> {
  const chunkBytes = Math.max(
    o.pieceSize,
    Math.floor(MANIFEST_DEFAULTS.readChunkBytes / o.pieceSize) * o.pieceSize,
  );
  const workers = slices.map((files) =>
    startTreeHashWorker({
      files,
      pieceSize: o.pieceSize,
      chunkBytes,
      digests: o.digests.buffer as SharedArrayBuffer,
      progressStepBytes: MANIFEST_DEFAULTS.progressStepBytes,
      ...(o.native ? { addon: NATIVE_ADDON_PATH } : {}),
    }),
  );
  await awaitHashWorkers(workers, o.progress, o.signal, 'the folder');
}

type FileStat = { size: number; mtimeMs: number; mode: number };

/** Each file's lstat (size -1: no longer a regular file), by up to `workers` workers, in slices of the list. */
async function lstatFiles<F extends { abs: string }>(
  files: readonly F[],
  workers: number,
  each: (f: F, st: FileStat) => void,
): Promise<void> {
  if (files.length === 0) return;
  const n = Math.max(1, Math.min(workers, Math.ceil(files.length / LSTAT_FILES_PER_WORKER)));
  const per = Math.ceil(files.length / n);
  const slices: F[][] = [];
  for (let i = 0; i < files.length; i += per) slices.push(files.slice(i, i + per));
  const answers: Float64Array[] = new Array(slices.length);
  await Promise.all(
    slices.map((slice, k) =>
      awaitHashWorkers<Float64Array>(
        [startLstatWorker(slice.map((f) => f.abs))],
        (a) => {
          answers[k] = a;
        },
        undefined,
        'the folder',
      ),
    ),
  );
  slices.forEach((slice, k) => {
    const a = answers[k]!;
    for (let i = 0; i < slice.length; i++)
      each(slice[i]!, { size: a[i * 3]!, mtimeMs: a[i * 3 + 1]!, mode: a[i * 3 + 2]! });
  });
}
