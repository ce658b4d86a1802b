import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import {
  choosePieceSize,
  computeFileId,
  MAX_PIECES,
  type Manifest,
  type TreeEntry,
  validateManifest,
} from '../../src/protocol/manifest.js';
import {
  assembleManifest,
  encodeRoot,
  FILE_PAGE_PATH_BYTES,
  FILES_PER_PAGE,
  type ManifestPage,
  PIECES_PER_PAGE,
  pageHash,
  pagesOf,
  rootFileId,
  validatePage,
  validateRoot,
} from '../../src/protocol/manifest-pages.js';

// A folder's manifest travels and is stored in pages of bounded size (issue 17): the root is
// small, the id covers every page, and whatever arrives is checked before use.

const PIECE = 16 * 1024;

/** A tree manifest of these files (piece hashes derived from the index, so pages differ). */
function treeOf(files: TreeEntry[]): Manifest {
  const count = files.reduce((n, f) => n + Math.ceil(f.size / PIECE), 0);
  const pieces = Array.from({ length: count }, (_, i) =>
    createHash('sha256').update(String(i)).digest('hex'),
  );
  const size = files.reduce((n, f) => n + f.size, 0);
  return validateManifest({ version: 2, size, pieceSize: PIECE, pieces, files });
}

function numbered(n: number, size = 1): TreeEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    path: `d${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i).padStart(7, '0')}`,
    size,
  }));
}

const lookup = (pages: { hash: string; page: ManifestPage }[]) => {
  const m = new Map(pages.map((p) => [p.hash, p.page]));
  return (h: string) => m.get(h);
};

function invalid(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CoterieError);
    expect((err as CoterieError).code).toBe('INVALID_MANIFEST');
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('manifest pages', () => {
  it('cuts a 100,000-file tree into pages under 1 MiB each and a root of a few KiB, and puts it back together', () => {
    const m = treeOf(numbered(100_000, 20_000)); // two pieces a file: 200,000 pieces, past the old 65,536
    expect(m.pieces.length).toBe(200_000);
    expect(m.pieces.length).toBeLessThanOrEqual(MAX_PIECES);
    const { root, pages } = pagesOf(m);
    expect(root.filePages.length).toBe(Math.ceil(100_000 / FILES_PER_PAGE));
    expect(root.piecePages.length).toBe(Math.ceil(200_000 / PIECES_PER_PAGE));
    expect(JSON.stringify(root).length).toBeLessThan(8 * 1024);
    for (const p of pages) expect(JSON.stringify(p.page).length).toBeLessThan(1024 * 1024);
    const back = assembleManifest(validateRoot(JSON.parse(JSON.stringify(root))), lookup(pages));
    expect(back).toEqual(m);
    expect(computeFileId(m)).toBe(rootFileId(root));
    expect(rootFileId(root)).toBe(createHash('sha256').update(encodeRoot(root)).digest('hex'));
  }, 60_000);

  it('cuts long paths by bytes as well as by count', () => {
    const long = Array.from({ length: 300 }, (_, i) => ({
      path: `${`${'x'.repeat(250)}/`.repeat(8)}${String(i).padStart(4, '0')}`,
      size: 1,
    }));
    const { root, pages } = pagesOf(treeOf(long));
    expect(root.filePages.length).toBeGreaterThan(2);
    for (const p of pages) {
      if (p.page.kind === 'files')
        expect(p.page.files.reduce((n, f) => n + Buffer.byteLength(f.path), 0)).toBeLessThanOrEqual(
          FILE_PAGE_PATH_BYTES,
        );
    }
  });

  it('keeps single-file manifests and their ids as they were (version 1, one body)', () => {
    expect(choosePieceSize(300 * 1024 ** 3)).toBe(8 * 1024 * 1024);
    expect(choosePieceSize(1024 ** 4)).toBe(16 * 1024 * 1024);
    const one: Manifest = { version: 1, size: 3, pieceSize: PIECE, pieces: ['ab'.repeat(32)] };
    expect(computeFileId(one)).toBe(
      createHash('sha256')
        .update(Buffer.from(`4354524d01${'0000000000000003'}${'00004000'}00000001${'ab'.repeat(32)}`, 'hex'))
        .digest('hex'),
    );
    expect(() => pagesOf(one)).toThrow(CoterieError);
    invalid(() =>
      validateManifest({
        version: 1,
        size: 65_537 * PIECE,
        pieceSize: PIECE,
        pieces: new Array(65_537).fill('ab'.repeat(32)),
      }),
    );
  });

  it('refuses a page that lies, is missing, is out of place or breaks the tree across pages', () => {
    const m = treeOf(numbered(5000));
    const { root, pages } = pagesOf(m);
    const get = lookup(pages);
    expect(
      invalid(() => assembleManifest(root, (h) => (h === root.filePages[1] ? undefined : get(h)))),
    ).toContain('missing');
    // A page served under another page's hash.
    expect(
      invalid(() => assembleManifest(root, (h) => get(h === root.filePages[0] ? root.filePages[1]! : h))),
    ).toContain('does not match');
    // A piece page in a file page's place.
    expect(
      invalid(() => assembleManifest({ ...root, filePages: [root.piecePages[0]!, root.filePages[1]!] }, get)),
    ).toContain('not a file page');
    // Pages each valid alone, swapped: the paths are out of order across them.
    expect(
      invalid(() => assembleManifest({ ...root, filePages: [root.filePages[1]!, root.filePages[0]!] }, get)),
    ).toContain('out of order');
    // Two names equal but for case, one in each page.
    const clash = treeOf(numbered(FILES_PER_PAGE));
    const other = { kind: 'files' as const, files: [{ path: 'D000/f0000000', size: 1 }] };
    const { root: r2, pages: p2 } = pagesOf(clash);
    const withClash = { ...r2, fileCount: r2.fileCount + 1, filePages: [...r2.filePages, pageHash(other)] };
    expect(
      invalid(() => assembleManifest(withClash, lookup([...p2, { hash: pageHash(other), page: other }]))),
    ).toMatch(/only in case|out of order|add up/);
    // Counts in the root that the pages do not bear out.
    expect(invalid(() => assembleManifest({ ...root, fileCount: root.fileCount - 1 }, get))).toContain(
      'files, not',
    );
  });

  it('checks every path of a page as it arrives, each bad kind refused', () => {
    for (const path of ['../x', '/etc/passwd', 'a\u0000b', 'a\\b', 'docs/CON', 'a//b', './a', 'x.']) {
      invalid(() => validatePage({ kind: 'files', files: [{ path, size: 1 }] }));
    }
    expect(
      invalid(() => validatePage({ kind: 'files', files: [{ path: 'l', size: 1, link: '/etc' }] })),
    ).toContain("'link' field");
    invalid(() =>
      validatePage({ kind: 'pieces', pieces: new Array(PIECES_PER_PAGE + 1).fill('ab'.repeat(32)) }),
    );
    invalid(() => validatePage({ kind: 'files', files: numbered(FILES_PER_PAGE + 1) }));
    invalid(() => validateRoot({ ...pagesOf(treeOf(numbered(3))).root, pieceCount: MAX_PIECES + 1 }));
  });

  it('never throws anything but INVALID_MANIFEST on arbitrary pages and roots (fuzzed)', () => {
    const good = pagesOf(treeOf(numbered(10)));
    const page = fc.oneof(
      fc.anything(),
      fc.record(
        { kind: fc.constantFrom('files', 'pieces', 'x'), files: fc.anything(), pieces: fc.anything() },
        { requiredKeys: [] },
      ),
      fc.record({
        kind: fc.constant('files'),
        files: fc.array(
          fc.record({
            path: fc.oneof(fc.string(), fc.string({ unit: 'binary' })),
            size: fc.oneof(fc.nat(), fc.double()),
          }),
          { maxLength: 5 },
        ),
      }),
    );
    fc.assert(
      fc.property(page, (v) => {
        try {
          const p = validatePage(v);
          // What passes is clean and hashes stably.
          expect(pageHash(validatePage(JSON.parse(JSON.stringify(p))))).toBe(pageHash(p));
        } catch (err) {
          expect((err as CoterieError).code).toBe('INVALID_MANIFEST');
        }
      }),
      { numRuns: 2000 },
    );
    const root = fc.record(
      {
        version: fc.constantFrom(2, 1, '2'),
        size: fc.oneof(fc.nat(), fc.integer(), fc.double()),
        pieceSize: fc.constantFrom(PIECE, 1000, 2 ** 30),
        pieceCount: fc.oneof(fc.nat({ max: 20 }), fc.constant(MAX_PIECES + 1)),
        fileCount: fc.nat({ max: 20 }),
        filePages: fc.oneof(fc.constant(good.root.filePages), fc.array(fc.string())),
        piecePages: fc.oneof(
          fc.constant(good.root.piecePages),
          fc.array(fc.stringMatching(/^[0-9a-f]{0,64}$/)),
        ),
        extra: fc.anything(),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(root, (v) => {
        try {
          assembleManifest(validateRoot(v), lookup(good.pages));
        } catch (err) {
          expect((err as CoterieError).code).toBe('INVALID_MANIFEST');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('gives one tree one id, and any change to a path, size, mode or piece another', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          // Names Windows reserves (nul, con…) are refused in a tree: none here.
          fc
            .stringMatching(/^[a-z]{1,6}(\/[a-z]{1,6}){0,2}$/)
            .filter((p) => !p.split('/').some((s) => /^(con|prn|aux|nul)$/.test(s))),
          { minLength: 1, maxLength: 30 },
        ),
        (raw) => {
          const paths = [...raw].sort();
          // Paths where another is a directory cannot be one tree: keep the rest.
          const files = paths
            .filter((p) => !paths.some((q) => q.startsWith(`${p}/`)))
            .map((path, i) => ({ path, size: i * 7000 }));
          const m = treeOf(files);
          const id = computeFileId(m);
          expect(computeFileId(treeOf(files.map((f) => ({ ...f }))))).toBe(id);
          const k = files.length - 1;
          expect(
            computeFileId(treeOf(files.map((f, i) => (i === k ? { ...f, size: f.size + 1 } : f)))),
          ).not.toBe(id);
          expect(
            computeFileId(treeOf(files.map((f, i) => (i === k ? { ...f, executable: true as const } : f)))),
          ).not.toBe(id);
          if (m.pieces.length > 0)
            expect(
              computeFileId({
                ...m,
                pieces: [...m.pieces].reverse().map((p, i) => (i === 0 ? 'ff'.repeat(32) : p)),
              }),
            ).not.toBe(id);
        },
      ),
      { numRuns: 200 },
    );
  });
});
