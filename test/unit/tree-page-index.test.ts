import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type TreeFilePages, TreePageIndex, wholeTreePages } from '../../src/peer/files/tree-pages.js';
import { CoterieError } from '../../src/protocol/errors.js';
import {
  type Manifest,
  pieceCount,
  pieceLength,
  type TreeEntry,
  treeLayout,
} from '../../src/protocol/manifest.js';

// Serving a folder finds a piece's file by reading only the page of the file list that covers
// it (issue 17): the page index (each page's first file and first piece) against the layout of
// the whole manifest, at page boundaries, with empty files, files of many pieces, the last page.

const PIECE = 16 * 1024;

function tree(sizes: number[]): Manifest {
  const files: TreeEntry[] = sizes.map((size, i) => ({ path: `f${String(i).padStart(4, '0')}`, size }));
  const count = sizes.reduce((n, s) => n + pieceCount(s, PIECE), 0);
  return {
    version: 2,
    size: sizes.reduce((a, b) => a + b, 0),
    pieceSize: PIECE,
    pieces: Array.from({ length: count }, () => 'a'.repeat(64)),
    files,
  };
}

/** Every piece found where the whole manifest's layout puts it, with its length. */
function expectAsLayout(manifest: Manifest, index: TreePageIndex): void {
  const layout = treeLayout(manifest);
  for (let p = 0; p < manifest.pieces.length; p++) {
    const at = index.locate(p);
    const k = layout.fileOfPiece(p);
    expect(at?.index, `piece ${p}`).toBe(k);
    expect(at?.file).toEqual(manifest.files![k]);
    expect(at?.firstPiece).toBe(layout.firstPiece[k]);
    expect(index.pieceLength(p), `length of piece ${p}`).toBe(pieceLength(manifest, p));
  }
}

describe('the page index of a served tree', () => {
  it('finds each piece at page boundaries, past empty files and pages of them, to the last page', () => {
    // Pages of 3 files: [5 pieces, empty, 1] [empty, empty, empty] [2, empty, 1 short] [1 short]
    const manifest = tree([5 * PIECE, 0, PIECE, 0, 0, 0, 2 * PIECE - 7, 0, 100, 1]);
    const index = new TreePageIndex(wholeTreePages(manifest, 3), 1);
    expect(index.fileCount).toBe(10);
    expectAsLayout(manifest, index);
    // The first piece of page 3 (after a page of empty files only), and the last piece of all.
    expect(index.locate(6)).toMatchObject({ index: 6, firstPiece: 6 });
    expect(index.locate(7)).toMatchObject({ index: 6, firstPiece: 6 });
    expect(index.pieceLength(7)).toBe(PIECE - 7);
    expect(index.locate(9)).toMatchObject({ index: 9, firstPiece: 9 });
    expect(index.pieceLength(9)).toBe(1);
    // Outside the tree.
    for (const p of [-1, 10, 1.5, Number.NaN]) {
      expect(index.locate(p)).toBeUndefined();
      expect(index.pieceLength(p)).toBe(0);
    }
  });

  it('agrees with the whole layout for any sizes and any page size', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 4 * PIECE })), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 3 }),
        (sizes, perPage, cached) => {
          const manifest = tree(sizes);
          expectAsLayout(manifest, new TreePageIndex(wholeTreePages(manifest, perPage), cached));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps at most the pages it may cache, decoding one again only when it was dropped', () => {
    const manifest = tree(Array.from({ length: 12 }, () => PIECE)); // 4 pages of 3 files
    const index = new TreePageIndex(wholeTreePages(manifest, 3), 2);
    expect(index.pageReads).toBe(0);
    index.locate(0);
    index.locate(1);
    expect(index.pageReads).toBe(1); // one page covers both
    index.locate(4);
    index.locate(0);
    expect(index.pageReads).toBe(2); // both pages held
    index.locate(7); // a third page: the least recently used (4's) goes
    index.locate(0);
    expect(index.pageReads).toBe(3);
    index.locate(4);
    expect(index.pageReads).toBe(4);
  });

  it('refuses a page that cannot be read, or is not the one it indexed, with a coded error', () => {
    const manifest = tree([PIECE, PIECE, PIECE, PIECE]);
    const whole = wholeTreePages(manifest, 2);
    let broken: 'unreadable' | 'other' | null = null;
    const pages: TreeFilePages = {
      ...whole,
      filePage(no) {
        if (no === 1 && broken === 'unreadable') throw new CoterieError('INVALID_MANIFEST', 'altered');
        if (no === 1 && broken === 'other') return [{ path: 'x', size: 3 * PIECE }];
        return whole.filePage(no);
      },
    };
    const index = new TreePageIndex(pages, 1);
    for (broken of ['unreadable', 'other'] as const) {
      index.locate(0); // page 0 now held, page 1 not
      let caught: unknown;
      try {
        index.locate(2);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CoterieError);
      expect((caught as CoterieError).code).toBe('INVALID_MANIFEST');
    }
    broken = null;
    expect(index.locate(3)).toMatchObject({ index: 3 });
  });

  it('refuses pages that do not add up to the tree', () => {
    const manifest = tree([PIECE, 2 * PIECE]);
    expect(() => new TreePageIndex({ ...wholeTreePages(manifest, 1), pieceCount: 4 })).toThrow(
      /take 3 pieces, not 4/,
    );
  });
});
