import { createHash } from 'node:crypto';
import { CoterieError } from './errors.js';
import { treeFileId } from './manifest-pages.js';
import { isHex64 } from './names.js';
import { treePathProblem, treePathsProblem } from './tree-paths.js';

/**
 * A file's manifest: what the tracker stores and downloaders verify against.
 * It holds no name: names are per group, so the same bytes shared twice are
 * one file (content addressing).
 *
 * Version 2 is a folder share (a tree): `files` lists each file's relative
 * path, size and executable bit in path order, and each file's pieces follow
 * the previous file's, starting on a piece of its own (no piece spans two
 * files; each file's last piece may be short; an empty file has none). A
 * single file stays version 1, byte for byte as before.
 */
export interface Manifest {
  version: 1 | 2;
  /** File size in bytes (a tree: the sum of its files' sizes). */
  size: number;
  /** Bytes per piece (a power of two); the last piece (of each file of a tree) may be shorter. */
  pieceSize: number;
  /** SHA-256 of each piece, lowercase hex, in order. */
  pieces: string[];
  /** Version 2 only: the tree's files, in strictly increasing path order. */
  files?: TreeEntry[];
}

/** One file of a folder share. */
export interface TreeEntry {
  /** Relative, `/`-separated, checked by tree-paths.ts. */
  path: string;
  size: number;
  /** Present (true) when the file is executable; restored on download. */
  executable?: true;
}

export const MANIFEST_VERSION = 1;
export const TREE_MANIFEST_VERSION = 2;
/** A tree's files; each non-empty one takes a piece at least, and the wire counts at most MAX_PIECES. */
export const MAX_TREE_FILES = 1_048_576;
/** The bytes of all a tree's paths together (a tree travels in pages: manifest-pages.ts). */
export const MAX_TREE_PATH_BYTES = 64 * 1024 * 1024;
export const MIN_PIECE_SIZE_BYTES = 16 * 1024;
export const MAX_PIECE_SIZE_BYTES = 16 * 1024 * 1024;
/**
 * A single file's pieces: keeps its manifest, sent whole, small (≤ 4.4 MB as
 * JSON hex) whatever its size. It also fixes the piece size choosePieceSize
 * makes, so it never changes: the same bytes keep the same id.
 */
export const MAX_FILE_PIECES = 65_536;
/**
 * Pieces of a share on the wire (bitfields, piece indexes): a tree needs a
 * piece per file at least, and travels in pages. A full bitfield is 128 KiB.
 */
export const MAX_PIECES = 1_048_576;
export const MAX_FILE_SIZE_BYTES = MAX_FILE_PIECES * MAX_PIECE_SIZE_BYTES; // 1 TiB
/**
 * The default choice gives a file of `size` bytes about sqrt(size / PIECE_SIZE_SCALE) pieces:
 * 512 for 256 MiB, 1,024 for 1 GiB, 128 for 16 MiB. Every piece costs the same work whatever
 * its size (a request, a hash job, a write, a `have` to every connection, bookkeeping in
 * JavaScript), so pieces grow with the file; a swarm needs only a few pieces per downloader to
 * trade. libtorrent's rule is also a square root (a fourth of these sizes); Transmission's
 * table gives 1 MiB for 1 GiB. Measured on the 16 × 256 MiB swarm (bench/sharing/README.md),
 * 512 KiB pieces against 128 KiB cut the downloaders' CPU per GiB by about 30 %.
 */
const PIECE_SIZE_SCALE = 1024;
const DEFAULT_MIN_PIECE_SIZE_BYTES = 64 * 1024;
const DEFAULT_MAX_PIECE_SIZE_BYTES = 4 * 1024 * 1024;

/**
 * The piece size for a file of `size` bytes: the smallest power of two of at least
 * sqrt(size × PIECE_SIZE_SCALE), between 64 KiB and 4 MiB. Deterministic, so the same bytes
 * give the same manifest (and file id) on every machine running this rule (a peer from before
 * it, which aimed at 2,048 pieces, gives another id for the same large file).
 */
export function choosePieceSize(size: number): number {
  let pieceSize = DEFAULT_MIN_PIECE_SIZE_BYTES;
  while (pieceSize < DEFAULT_MAX_PIECE_SIZE_BYTES && pieceSize * pieceSize < size * PIECE_SIZE_SCALE)
    pieceSize *= 2;
  // Files beyond 4 MiB × 65,536 = 256 GiB grow the piece size further only when the piece count would overflow.
  while (Math.ceil(size / pieceSize) > MAX_FILE_PIECES && pieceSize < MAX_PIECE_SIZE_BYTES) pieceSize *= 2;
  return pieceSize;
}

export function pieceCount(size: number, pieceSize: number): number {
  return size === 0 ? 0 : Math.ceil(size / pieceSize);
}

/** Length in bytes of piece `index` (the last one, of the file or of each file of a tree, may be short). */
export function pieceLength(
  manifest: Pick<Manifest, 'size' | 'pieceSize'> & { files?: TreeEntry[] | undefined },
  index: number,
): number {
  if (manifest.files !== undefined) {
    const layout = treeLayout(manifest as Manifest);
    const k = layout.fileOfPiece(index);
    if (k < 0) return 0;
    const file = manifest.files[k]!;
    return pieceLength(
      file.size === 0 ? { size: 0, pieceSize: 1 } : { size: file.size, pieceSize: manifest.pieceSize },
      index - layout.firstPiece[k]!,
    );
  }
  const start = index * manifest.pieceSize;
  return Math.max(0, Math.min(manifest.pieceSize, manifest.size - start));
}

/** Where each file of a tree lies among its pieces. */
export interface TreeLayout {
  /** firstPiece[k]: the index of file k's first piece (its pieces are firstPiece[k] .. firstPiece[k+1]-1). */
  readonly firstPiece: Uint32Array;
  /** The file holding piece `index`, or -1 outside the tree. */
  fileOfPiece(index: number): number;
}

const layouts = new WeakMap<Manifest, TreeLayout>();

/** The layout of a tree manifest (computed once per manifest object). */
export function treeLayout(manifest: Manifest): TreeLayout {
  const hit = layouts.get(manifest);
  if (hit !== undefined) return hit;
  const files = manifest.files ?? [];
  const firstPiece = new Uint32Array(files.length + 1);
  for (let k = 0; k < files.length; k++) {
    firstPiece[k + 1] = firstPiece[k]! + pieceCount(files[k]!.size, manifest.pieceSize);
  }
  const total = firstPiece[files.length]!;
  const layout: TreeLayout = {
    firstPiece,
    fileOfPiece(index) {
      if (!Number.isInteger(index) || index < 0 || index >= total) return -1;
      // The last file whose first piece is ≤ index and that has pieces (empty files have none).
      let lo = 0;
      let hi = files.length - 1;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (firstPiece[mid]! <= index) lo = mid;
        else hi = mid - 1;
      }
      while (lo > 0 && firstPiece[lo + 1] === firstPiece[lo]) lo--;
      return lo;
    },
  };
  layouts.set(manifest, layout);
  return layout;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * Checks a manifest received from the network or a file. Throws
 * INVALID_MANIFEST with the reason; returns a clean copy (no extra fields).
 */
export function validateManifest(value: unknown): Manifest {
  return checkManifest(value, false);
}

/**
 * validateManifest for a tree put together from pages that validatePage
 * (manifest-pages.ts) checked one by one as they arrived: every entry and
 * piece hash in `parts` was checked there, so only what spans the pages is
 * checked here (sizes against pieces, the paths' order, case and directories,
 * their bytes together). Checking each path's components and each hash a
 * second time cost a 100,000-file `list_files` about a third of its CPU.
 * Takes ownership of `parts`' arrays. Only assembleManifest calls it.
 */
export function validateAssembledTree(parts: {
  size: number;
  pieceSize: number;
  pieces: string[];
  files: TreeEntry[];
}): Manifest {
  return checkManifest({ version: TREE_MANIFEST_VERSION, ...parts }, true);
}

/** validateManifest; `partsChecked`: the entries and hashes are already clean (validateAssembledTree). */
function checkManifest(value: unknown, partsChecked: boolean): Manifest {
  const fail = (why: string): never => {
    throw new CoterieError('INVALID_MANIFEST', `invalid manifest: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return fail('not an object');
  const m = value as Record<string, unknown>;
  if (m.version !== MANIFEST_VERSION && m.version !== TREE_MANIFEST_VERSION)
    fail(`version must be ${MANIFEST_VERSION} (a file) or ${TREE_MANIFEST_VERSION} (a folder)`);
  const files =
    m.version === TREE_MANIFEST_VERSION ? validateTreeFiles(m.files, fail, partsChecked) : undefined;
  if (files === undefined && m.files !== undefined) fail('only a version 2 manifest lists files');
  const { size, pieceSize, pieces } = m;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    fail('size must be an integer ≥ 0');
  if ((size as number) > MAX_FILE_SIZE_BYTES) fail(`size exceeds ${MAX_FILE_SIZE_BYTES} bytes`);
  if (
    typeof pieceSize !== 'number' ||
    !isPowerOfTwo(pieceSize) ||
    pieceSize < MIN_PIECE_SIZE_BYTES ||
    pieceSize > MAX_PIECE_SIZE_BYTES
  ) {
    fail(`pieceSize must be a power of two between ${MIN_PIECE_SIZE_BYTES} and ${MAX_PIECE_SIZE_BYTES}`);
  }
  if (!Array.isArray(pieces)) return fail('pieces must be an array');
  const maxPieces = files === undefined ? MAX_FILE_PIECES : MAX_PIECES;
  if (pieces.length > maxPieces) fail(`more than ${maxPieces} pieces`);
  let expected = pieceCount(size as number, pieceSize as number);
  if (files !== undefined) {
    let total = 0;
    expected = 0;
    for (const f of files) {
      total += f.size;
      expected += pieceCount(f.size, pieceSize as number);
    }
    if (total !== size) fail(`the files' sizes add up to ${total}, not ${size as number}`);
  }
  if (pieces.length !== expected)
    fail(`${pieces.length} pieces listed but the sizes and pieceSize imply ${expected}`);
  if (!partsChecked)
    for (const p of pieces) if (!isHex64(p)) fail('each piece hash must be 64 lowercase hex characters');
  const clean: Manifest = {
    version: files === undefined ? 1 : 2,
    size: size as number,
    pieceSize: pieceSize as number,
    pieces: partsChecked ? (pieces as string[]) : [...(pieces as string[])],
  };
  if (files !== undefined) clean.files = files;
  return clean;
}

/**
 * One file entry of a tree as it arrives (its path checked alone, by
 * tree-paths.ts); a clean copy. Nothing but a regular file's fields: a
 * symbolic link, device or directory entry is refused.
 */
export function validateTreeEntry(entry: unknown, fail: (why: string) => never): TreeEntry {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry))
    fail('a file entry is not an object');
  const e = entry as Record<string, unknown>;
  for (const key of Object.keys(e)) {
    if (key !== 'path' && key !== 'size' && key !== 'executable') fail(`a file entry has a '${key}' field`);
  }
  const problem = treePathProblem(e.path);
  if (problem !== undefined) fail(problem);
  if (
    typeof e.size !== 'number' ||
    !Number.isSafeInteger(e.size) ||
    e.size < 0 ||
    e.size > MAX_FILE_SIZE_BYTES
  )
    fail('a file size must be an integer ≥ 0');
  if (e.executable !== undefined && e.executable !== true) fail('executable is true or absent');
  return {
    path: e.path as string,
    size: e.size as number,
    ...(e.executable === true ? { executable: true as const } : {}),
  };
}

/**
 * A tree's file list, checked entry by entry (unless `entriesChecked`: they
 * are clean entries already, taken as they are) and as a whole; a clean copy.
 */
function validateTreeFiles(
  value: unknown,
  fail: (why: string) => never,
  entriesChecked: boolean,
): TreeEntry[] {
  if (!Array.isArray(value)) return fail('a version 2 manifest lists its files');
  if (value.length === 0) fail('a folder share lists at least one file');
  if (value.length > MAX_TREE_FILES) fail(`more than ${MAX_TREE_FILES} files`);
  const out: TreeEntry[] = entriesChecked ? (value as TreeEntry[]) : [];
  let pathBytes = 0;
  for (const entry of value as unknown[]) {
    const clean = entriesChecked ? (entry as TreeEntry) : validateTreeEntry(entry, fail);
    pathBytes += Buffer.byteLength(clean.path);
    if (!entriesChecked) out.push(clean);
  }
  if (pathBytes > MAX_TREE_PATH_BYTES) fail(`the paths take more than ${MAX_TREE_PATH_BYTES} bytes`);
  const problem = treePathsProblem(out.map((f) => f.path));
  if (problem !== undefined) fail(problem);
  return out;
}

const MAGIC = Buffer.from('CTRM', 'ascii');
const HEADER_BYTES = 4 + 1 + 8 + 4 + 4;

/**
 * A single file's canonical binary encoding: "CTRM", version u8, size u64 BE,
 * pieceSize u32 BE, piece count u32 BE, then each 32-byte piece hash. Its
 * SHA-256 is the file id. A tree is encoded as its pages and root instead
 * (manifest-pages.ts), whose id covers every path, size, mode and byte too.
 */
export function encodeManifest(manifest: Manifest): Buffer {
  if (manifest.files !== undefined) throw new CoterieError('INTERNAL', 'a tree is encoded in pages');
  const out = Buffer.alloc(HEADER_BYTES + 32 * manifest.pieces.length);
  MAGIC.copy(out, 0);
  out.writeUInt8(manifest.version, 4);
  out.writeBigUInt64BE(BigInt(manifest.size), 5);
  out.writeUInt32BE(manifest.pieceSize, 13);
  out.writeUInt32BE(manifest.pieces.length, 17);
  manifest.pieces.forEach((hex, i) => {
    out.write(hex, HEADER_BYTES + 32 * i, 32, 'hex');
  });
  return out;
}

/** A single file's id is the SHA-256 of its encoding; a tree's, of its paged root's (manifest-pages.ts). */
export function computeFileId(manifest: Manifest): string {
  if (manifest.files !== undefined) return treeFileId(manifest);
  return createHash('sha256').update(encodeManifest(manifest)).digest('hex');
}
