import { createHash } from 'node:crypto';
import { CoterieError } from './errors.js';
import {
  MAX_FILE_SIZE_BYTES,
  MAX_PIECE_SIZE_BYTES,
  MAX_PIECES,
  MAX_TREE_FILES,
  type Manifest,
  MIN_PIECE_SIZE_BYTES,
  TREE_MANIFEST_VERSION,
  type TreeEntry,
  validateAssembledTree,
  validateTreeEntry,
} from './manifest.js';
import { TREE_PATH_MAX_BYTES } from './tree-paths.js';

/**
 * A folder share's manifest on the wire and in the tracker's store: never
 * one body, however large the tree (100,000 files is about 7 MB as one JSON
 * document). The tree's file list and its piece hashes are cut into pages of
 * bounded size (≤ 1 MiB as JSON, the tracker's default body limit), each
 * named by the SHA-256 of its canonical encoding; the root lists the pages'
 * hashes in order, and the share's id is the SHA-256 of the root's encoding.
 * So the id covers every page, and each page is checked against its hash on
 * its own as it arrives, before anything is made of it.
 *
 * A single file (version 1) has no pages: its manifest stays one body, byte
 * for byte as before.
 */
export interface ManifestRoot {
  version: 2;
  size: number;
  pieceSize: number;
  pieceCount: number;
  fileCount: number;
  /** SHA-256 (hex) of each file page, in path order. */
  filePages: string[];
  /** SHA-256 (hex) of each piece page, in piece order. */
  piecePages: string[];
}

export type ManifestPage = { kind: 'files'; files: TreeEntry[] } | { kind: 'pieces'; pieces: string[] };

/** Piece hashes per piece page (every piece page but the last is full): 8,192 × 67 bytes of JSON. */
export const PIECES_PER_PAGE = 8192;
/** Files per file page, at most. */
export const FILES_PER_PAGE = 4096;
/** A file page's paths together, at most (a path is ≤ 4 KiB, so one always fits an empty page). */
export const FILE_PAGE_PATH_BYTES = 256 * 1024;
/** A page's request body, at most: the cuts above keep every page's JSON under it. */
export const MAX_PAGE_BODY_BYTES = 1024 * 1024;
/** Bounds the root: the canonical cut of MAX_TREE_FILES files of MAX_TREE_PATH_BYTES takes about 520. */
export const MAX_FILE_PAGES = 1024;

const ROOT_MAGIC = Buffer.from('CTRM', 'ascii');
const FILE_PAGE_MAGIC = Buffer.from('CTRF', 'ascii');
const PIECE_PAGE_MAGIC = Buffer.from('CTRP', 'ascii');

const fail = (why: string): never => {
  throw new CoterieError('INVALID_MANIFEST', `invalid manifest: ${why}`);
};

/** A manifest's pages and root; a single file's manifest has none (it is sent whole). */
export interface Paged {
  root: ManifestRoot;
  pages: { hash: string; page: ManifestPage }[];
}

/** Cuts a tree's manifest into its canonical pages (the same tree always gives the same root). */
export function pagesOf(manifest: Manifest): Paged {
  const files = manifest.files;
  if (files === undefined) throw new CoterieError('INTERNAL', 'a single file has no manifest pages');
  const pages: Paged['pages'] = [];
  const add = (page: ManifestPage) => {
    pages.push({ hash: pageHash(page), page });
    return pages[pages.length - 1]!.hash;
  };
  const filePages: string[] = [];
  let current: TreeEntry[] = [];
  let bytes = 0;
  for (const f of files) {
    const b = Buffer.byteLength(f.path);
    if (current.length === FILES_PER_PAGE || (current.length > 0 && bytes + b > FILE_PAGE_PATH_BYTES)) {
      filePages.push(add({ kind: 'files', files: current }));
      current = [];
      bytes = 0;
    }
    current.push(f);
    bytes += b;
  }
  if (current.length > 0) filePages.push(add({ kind: 'files', files: current }));
  const piecePages: string[] = [];
  for (let i = 0; i < manifest.pieces.length; i += PIECES_PER_PAGE) {
    piecePages.push(add({ kind: 'pieces', pieces: manifest.pieces.slice(i, i + PIECES_PER_PAGE) }));
  }
  const root: ManifestRoot = {
    version: TREE_MANIFEST_VERSION,
    size: manifest.size,
    pieceSize: manifest.pieceSize,
    pieceCount: manifest.pieces.length,
    fileCount: files.length,
    filePages,
    piecePages,
  };
  return { root, pages };
}

/** The id of a tree: the SHA-256 of its root's encoding. */
export function treeFileId(manifest: Manifest): string {
  return rootFileId(pagesOf(manifest).root);
}

export function rootFileId(root: ManifestRoot): string {
  return createHash('sha256').update(encodeRoot(root)).digest('hex');
}

/**
 * "CTRM", version u8 (2), size u64 BE, pieceSize u32 BE, piece count u32 BE,
 * file count u32 BE, file page count u32 BE and each 32-byte hash, piece page
 * count u32 BE and each 32-byte hash.
 */
export function encodeRoot(root: ManifestRoot): Buffer {
  const n = root.filePages.length + root.piecePages.length;
  const out = Buffer.alloc(4 + 1 + 8 + 4 * 5 + 32 * n);
  ROOT_MAGIC.copy(out, 0);
  out.writeUInt8(root.version, 4);
  out.writeBigUInt64BE(BigInt(root.size), 5);
  let at = out.writeUInt32BE(root.pieceSize, 13);
  at = out.writeUInt32BE(root.pieceCount, at);
  at = out.writeUInt32BE(root.fileCount, at);
  for (const list of [root.filePages, root.piecePages]) {
    at = out.writeUInt32BE(list.length, at);
    for (const hex of list) at += out.write(hex, at, 32, 'hex');
  }
  return out;
}

/**
 * A file page: "CTRF", count u32 BE, then per file its path's UTF-8 length
 * u16 BE, the path, its size u64 BE and flags u8 (bit 0: executable). A piece
 * page: "CTRP", count u32 BE, then each 32-byte hash.
 */
export function encodePage(page: ManifestPage): Buffer {
  // Written without a Buffer per path, a BigInt per size or a call per hash: a 100,000-file
  // tree's pages are encoded each time its manifest is put together (list_files, a download).
  if (page.kind === 'pieces') {
    const out = Buffer.alloc(8 + 32 * page.pieces.length);
    PIECE_PAGE_MAGIC.copy(out, 0);
    out.writeUInt32BE(page.pieces.length, 4);
    // Each hash is 64 hex digits (validatePage), so the joined text fills the rest exactly.
    out.write(page.pieces.join(''), 8, 'hex');
    return out;
  }
  const lengths = page.files.map((f) => Buffer.byteLength(f.path));
  const out = Buffer.alloc(8 + lengths.reduce((n, l) => n + 2 + l + 9, 0));
  FILE_PAGE_MAGIC.copy(out, 0);
  let at = out.writeUInt32BE(page.files.length, 4);
  page.files.forEach((f, i) => {
    at = out.writeUInt16BE(lengths[i]!, at);
    at += out.write(f.path, at, 'utf8');
    // u64 BE as two u32s: a size is a safe integer (≤ 2^53), so both halves are exact.
    at = out.writeUInt32BE(Math.floor(f.size / 2 ** 32), at);
    at = out.writeUInt32BE(f.size >>> 0, at);
    at = out.writeUInt8(f.executable === true ? 1 : 0, at);
  });
  return out;
}

export function pageHash(page: ManifestPage): string {
  return createHash('sha256').update(encodePage(page)).digest('hex');
}

function isCount(v: unknown, max: number, min = 0): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
}

const HEX = /^[0-9a-f]*$/;

function hashList(v: unknown, what: string, max: number): string[] {
  if (!Array.isArray(v) || v.length > max) return fail(`${what} must be a list of at most ${max} hashes`);
  // Strings of 64 characters each, then one pass over them all: isHex64 on each, without a
  // regular expression run per hash (a piece page holds 8,192).
  for (const h of v)
    if (typeof h !== 'string' || h.length !== 64) fail(`${what} must be 64 lowercase hex characters each`);
  if (!HEX.test((v as string[]).join(''))) fail(`${what} must be 64 lowercase hex characters each`);
  return [...(v as string[])];
}

/** Checks a root from the network; a clean copy. The pages are checked as they arrive (validatePage). */
export function validateRoot(value: unknown): ManifestRoot {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('not an object');
  const r = value as Record<string, unknown>;
  for (const key of Object.keys(r)) {
    if (!['version', 'size', 'pieceSize', 'pieceCount', 'fileCount', 'filePages', 'piecePages'].includes(key))
      fail(`a root has no '${key}' field`);
  }
  if (r.version !== TREE_MANIFEST_VERSION) fail(`a paged manifest is version ${TREE_MANIFEST_VERSION}`);
  if (!isCount(r.size, MAX_FILE_SIZE_BYTES)) fail('size must be an integer ≥ 0 within bounds');
  const ps = r.pieceSize;
  if (!isCount(ps, MAX_PIECE_SIZE_BYTES, MIN_PIECE_SIZE_BYTES) || (ps & (ps - 1)) !== 0)
    fail(`pieceSize must be a power of two between ${MIN_PIECE_SIZE_BYTES} and ${MAX_PIECE_SIZE_BYTES}`);
  if (!isCount(r.pieceCount, MAX_PIECES)) fail(`pieceCount must be an integer in 0..${MAX_PIECES}`);
  if (!isCount(r.fileCount, MAX_TREE_FILES, 1)) fail(`fileCount must be an integer in 1..${MAX_TREE_FILES}`);
  const filePages = hashList(r.filePages, 'filePages', MAX_FILE_PAGES);
  const piecePages = hashList(r.piecePages, 'piecePages', Math.ceil(MAX_PIECES / PIECES_PER_PAGE));
  const fileCount = r.fileCount as number;
  const pieceCount = r.pieceCount as number;
  if (filePages.length < Math.ceil(fileCount / FILES_PER_PAGE) || filePages.length > fileCount)
    fail(`${filePages.length} file pages cannot hold ${fileCount} files`);
  if (piecePages.length !== Math.ceil(pieceCount / PIECES_PER_PAGE))
    fail(`${pieceCount} pieces take ${Math.ceil(pieceCount / PIECES_PER_PAGE)} piece pages`);
  return {
    version: TREE_MANIFEST_VERSION,
    size: r.size as number,
    pieceSize: ps as number,
    pieceCount,
    fileCount,
    filePages,
    piecePages,
  };
}

/**
 * Checks a page from the network (its shape, bounds and, for a file page,
 * every path alone as tree-paths.ts does); a clean copy. The order of paths
 * across pages and their sizes against the pieces are checked when the
 * pages are put together (assembleManifest).
 */
export function validatePage(value: unknown): ManifestPage {
  const page = checkPage(value);
  checkedPages.add(page);
  return page;
}

/**
 * The pages validatePage made: assembleManifest takes their entries and
 * hashes as clean, and checks any other page (the tracker's and peer.db's,
 * read back from a store) with validatePage first. A page's lists must not be
 * changed once it is checked (nothing here does).
 */
const checkedPages = new WeakSet<ManifestPage>();

function checkPage(value: unknown): ManifestPage {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return fail('a page is not an object');
  const p = value as Record<string, unknown>;
  if (Object.keys(p).length !== 2) fail('a page has a kind and its list only');
  if (p.kind === 'pieces') {
    return { kind: 'pieces', pieces: hashList(p.pieces, 'a piece page', PIECES_PER_PAGE) };
  }
  if (p.kind !== 'files') return fail("a page's kind is 'files' or 'pieces'");
  if (!Array.isArray(p.files) || p.files.length === 0 || p.files.length > FILES_PER_PAGE)
    fail(`a file page lists 1 to ${FILES_PER_PAGE} files`);
  const files: TreeEntry[] = [];
  let bytes = 0;
  for (const entry of p.files as unknown[]) {
    const clean = validateTreeEntry(entry, fail);
    bytes += Buffer.byteLength(clean.path);
    files.push(clean);
  }
  if (bytes > FILE_PAGE_PATH_BYTES + TREE_PATH_MAX_BYTES)
    fail(`a file page's paths take more than ${FILE_PAGE_PATH_BYTES} bytes`);
  return { kind: 'files', files };
}

/**
 * The whole manifest from a root and its pages (looked up by hash): each
 * page must be there, pass validatePage (once: a page it made is not checked
 * again), be of the kind its place in the root says, and hash to its name;
 * the result passes validateManifest's checks of the whole (paths in order
 * across pages, no two equal ignoring case, sizes against pieces).
 */
export function assembleManifest(
  root: ManifestRoot,
  page: (hash: string) => ManifestPage | undefined,
): Manifest {
  const files: TreeEntry[] = [];
  const pieces: string[] = [];
  const take = (hash: string, kind: ManifestPage['kind']): ManifestPage => {
    const found = page(hash);
    if (found === undefined) return fail(`page ${hash.slice(0, 12)}… is missing`);
    const p = checkedPages.has(found) ? found : validatePage(found);
    if (p.kind !== kind)
      fail(`page ${hash.slice(0, 12)}… is not a ${kind === 'files' ? 'file' : 'piece'} page`);
    if (pageHash(p) !== hash) fail(`page ${hash.slice(0, 12)}… does not match its hash`);
    return p;
  };
  for (const h of root.filePages) {
    const p = take(h, 'files');
    if (p.kind === 'files') for (const f of p.files) files.push(f);
  }
  root.piecePages.forEach((h, i) => {
    const p = take(h, 'pieces');
    if (p.kind !== 'pieces') return;
    const last = i === root.piecePages.length - 1;
    if (!last && p.pieces.length !== PIECES_PER_PAGE) fail('every piece page but the last is full');
    for (const x of p.pieces) pieces.push(x);
  });
  if (files.length !== root.fileCount)
    fail(`the file pages list ${files.length} files, not ${root.fileCount}`);
  if (pieces.length !== root.pieceCount)
    fail(`the piece pages list ${pieces.length} pieces, not ${root.pieceCount}`);
  return validateAssembledTree({ size: root.size, pieceSize: root.pieceSize, pieces, files });
}
