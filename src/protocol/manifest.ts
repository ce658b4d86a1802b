import { createHash } from 'node:crypto';
import { CoterieError } from './errors.js';
import { isHex64 } from './names.js';

/**
 * A file's manifest: what the tracker stores and downloaders verify against.
 * It holds no name: names are per group, so the same bytes shared twice are
 * one file (content addressing).
 */
export interface Manifest {
  version: 1;
  /** File size in bytes. */
  size: number;
  /** Bytes per piece (a power of two); the last piece may be shorter. */
  pieceSize: number;
  /** SHA-256 of each piece, lowercase hex, in order. */
  pieces: string[];
}

export const MANIFEST_VERSION = 1;
export const MIN_PIECE_SIZE_BYTES = 16 * 1024;
export const MAX_PIECE_SIZE_BYTES = 16 * 1024 * 1024;
/** Keeps a manifest small (≤ 2 MiB as JSON hex) whatever the file size. */
export const MAX_PIECES = 65_536;
export const MAX_FILE_SIZE_BYTES = MAX_PIECES * MAX_PIECE_SIZE_BYTES; // 1 TiB
/**
 * The default choice aims at about this many pieces: enough to spread a file
 * over many seeders, few enough to keep the manifest and bitfield small.
 */
const TARGET_PIECES = 2048;
const DEFAULT_MIN_PIECE_SIZE_BYTES = 64 * 1024;
const DEFAULT_MAX_PIECE_SIZE_BYTES = 4 * 1024 * 1024;

/**
 * The piece size for a file of `size` bytes. Deterministic, so the same bytes
 * give the same manifest (and file id) on every machine.
 */
export function choosePieceSize(size: number): number {
  let pieceSize = DEFAULT_MIN_PIECE_SIZE_BYTES;
  while (pieceSize < DEFAULT_MAX_PIECE_SIZE_BYTES && pieceSize * TARGET_PIECES < size) pieceSize *= 2;
  // Files beyond 4 MiB × 2048 = 8 GiB grow the piece size further only when the piece count would overflow.
  while (Math.ceil(size / pieceSize) > MAX_PIECES && pieceSize < MAX_PIECE_SIZE_BYTES) pieceSize *= 2;
  return pieceSize;
}

export function pieceCount(size: number, pieceSize: number): number {
  return size === 0 ? 0 : Math.ceil(size / pieceSize);
}

/** Length in bytes of piece `index` (the last one may be short). */
export function pieceLength(manifest: Pick<Manifest, 'size' | 'pieceSize'>, index: number): number {
  const start = index * manifest.pieceSize;
  return Math.max(0, Math.min(manifest.pieceSize, manifest.size - start));
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * Checks a manifest received from the network or a file. Throws
 * INVALID_MANIFEST with the reason; returns a clean copy (no extra fields).
 */
export function validateManifest(value: unknown): Manifest {
  const fail = (why: string): never => {
    throw new CoterieError('INVALID_MANIFEST', `invalid manifest: ${why}`);
  };
  if (typeof value !== 'object' || value === null) return fail('not an object');
  const m = value as Record<string, unknown>;
  if (m.version !== MANIFEST_VERSION) fail(`version must be ${MANIFEST_VERSION}`);
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
  if (pieces.length > MAX_PIECES) fail(`more than ${MAX_PIECES} pieces`);
  const expected = pieceCount(size as number, pieceSize as number);
  if (pieces.length !== expected)
    fail(`${pieces.length} pieces listed but size and pieceSize imply ${expected}`);
  for (const p of pieces) if (!isHex64(p)) fail('each piece hash must be 64 lowercase hex characters');
  return {
    version: 1,
    size: size as number,
    pieceSize: pieceSize as number,
    pieces: [...(pieces as string[])],
  };
}

const MAGIC = Buffer.from('CTRM', 'ascii');
const HEADER_BYTES = 4 + 1 + 8 + 4 + 4;

/**
 * The canonical binary encoding: "CTRM", version u8, size u64 BE,
 * pieceSize u32 BE, piece count u32 BE, then each 32-byte piece hash.
 * The file id is the SHA-256 of these bytes.
 */
export function encodeManifest(manifest: Manifest): Buffer {
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

export function computeFileId(manifest: Manifest): string {
  return createHash('sha256').update(encodeManifest(manifest)).digest('hex');
}
