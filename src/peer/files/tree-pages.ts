import { LRUCache } from 'lru-cache';
import { CoterieError } from '../../protocol/errors.js';
import { type Manifest, pieceCount, type TreeEntry } from '../../protocol/manifest.js';
import { FILES_PER_PAGE } from '../../protocol/manifest-pages.js';

/**
 * A tree's file list as pages read one at a time: peer.db's pages of a share or replica
 * (StoredManifest, each checked against its hash as it is read), or a manifest held whole.
 */
export interface TreeFilePages {
  readonly pieceSize: number;
  readonly pieceCount: number;
  readonly filePageCount: number;
  filePage(no: number): TreeEntry[];
}

/** A manifest held whole, as pages of `filesPerPage` files (any cut serves: only peer.db's is canonical). */
export function wholeTreePages(manifest: Manifest, filesPerPage = FILES_PER_PAGE): TreeFilePages {
  const files = manifest.files;
  if (files === undefined) throw new CoterieError('INTERNAL', 'a single file has no file pages');
  return {
    pieceSize: manifest.pieceSize,
    pieceCount: manifest.pieces.length,
    filePageCount: Math.ceil(files.length / filesPerPage),
    filePage: (no) => files.slice(no * filesPerPage, (no + 1) * filesPerPage),
  };
}

/** Where a piece lies: file `index` of the tree, whose first piece is `firstPiece`. */
export interface PieceFile {
  index: number;
  file: TreeEntry;
  firstPiece: number;
}

/** A file page decoded: its files, and each one's first piece (one more: the next page's first). */
interface DecodedPage {
  files: TreeEntry[];
  firstPiece: Uint32Array;
}

/** File pages decoded and kept per served tree, by default: 4 × 4,096 entries, not 100,000. */
export const CACHED_FILE_PAGES = 4;

/** The last i in [0, n) with at(i) ≤ value (at is non-decreasing, at(0) ≤ value). */
function lastAtMost(n: number, at: (i: number) => number, value: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (at(mid) <= value) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/**
 * Finds the file of a piece by reading only the file page that covers it. The index holds, per
 * page, its first file and first piece (two numbers a page: about 40 pages for 100,000 files),
 * built by reading the pages once; the pages themselves are decoded again as they are needed,
 * a few kept (least recently used dropped first). So serving a folder holds a few pages of its
 * manifest, not the whole of it, however many files it has.
 *
 * Pieces never span files and an empty file has none, so the page of piece p is the last one
 * whose first piece is ≤ p (pages of empty files only share their first piece with the next),
 * and within it the file likewise.
 */
export class TreePageIndex {
  readonly pieceSize: number;
  readonly pieceCount: number;
  readonly fileCount: number;
  /** Pages decoded since the index was built (the cache's misses). */
  pageReads = 0;
  readonly #pages: TreeFilePages;
  /** Per page: its first file's index, and that file's first piece; one more entry: the totals. */
  readonly #firstFile: Uint32Array;
  readonly #firstPiece: Uint32Array;
  readonly #cache: LRUCache<number, DecodedPage>;

  constructor(pages: TreeFilePages, cachedPages = CACHED_FILE_PAGES) {
    this.#pages = pages;
    this.pieceSize = pages.pieceSize;
    this.pieceCount = pages.pieceCount;
    const n = pages.filePageCount;
    this.#firstFile = new Uint32Array(n + 1);
    this.#firstPiece = new Uint32Array(n + 1);
    for (let no = 0; no < n; no++) {
      const files = pages.filePage(no);
      let pieces = 0;
      for (const f of files) pieces += pieceCount(f.size, pages.pieceSize);
      this.#firstFile[no + 1] = this.#firstFile[no]! + files.length;
      this.#firstPiece[no + 1] = this.#firstPiece[no]! + pieces;
    }
    this.fileCount = this.#firstFile[n]!;
    if (this.#firstPiece[n] !== pages.pieceCount) {
      throw new CoterieError(
        'INVALID_MANIFEST',
        `the file pages take ${this.#firstPiece[n]} pieces, not ${pages.pieceCount}`,
      );
    }
    this.#cache = new LRUCache({ max: Math.max(1, cachedPages) });
  }

  /** The file holding piece `piece`; undefined outside the tree. Throws when its page cannot be read. */
  locate(piece: number): PieceFile | undefined {
    if (!Number.isInteger(piece) || piece < 0 || piece >= this.pieceCount) return undefined;
    const pages = this.#pages.filePageCount;
    const no = lastAtMost(pages, (i) => this.#firstPiece[i]!, piece);
    const page = this.#page(no);
    const k = lastAtMost(page.files.length, (i) => page.firstPiece[i]!, piece);
    return { index: this.#firstFile[no]! + k, file: page.files[k]!, firstPiece: page.firstPiece[k]! };
  }

  /** Length in bytes of piece `piece` (the last of each file may be short); 0 outside the tree. */
  pieceLength(piece: number): number {
    const at = this.locate(piece);
    if (at === undefined) return 0;
    const start = (piece - at.firstPiece) * this.pieceSize;
    return Math.min(this.pieceSize, at.file.size - start);
  }

  #page(no: number): DecodedPage {
    const hit = this.#cache.get(no);
    if (hit !== undefined) return hit;
    const files = this.#pages.filePage(no);
    // The page read now must be the one indexed: peer.db rewritten under a served share is refused.
    if (files.length !== this.#firstFile[no + 1]! - this.#firstFile[no]!)
      throw new CoterieError('INVALID_MANIFEST', `file page ${no} is not the one served`);
    const firstPiece = new Uint32Array(files.length + 1);
    firstPiece[0] = this.#firstPiece[no]!;
    files.forEach((f, i) => {
      firstPiece[i + 1] = firstPiece[i]! + pieceCount(f.size, this.pieceSize);
    });
    if (firstPiece[files.length] !== this.#firstPiece[no + 1])
      throw new CoterieError('INVALID_MANIFEST', `file page ${no} is not the one served`);
    this.pageReads++;
    const page = { files, firstPiece };
    this.#cache.set(no, page);
    return page;
  }
}
