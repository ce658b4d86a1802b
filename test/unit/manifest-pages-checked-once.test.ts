import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import { type TreeEntry, validateManifest } from '../../src/protocol/manifest.js';
import { assembleManifest, pagesOf, validatePage, validateRoot } from '../../src/protocol/manifest-pages.js';
import * as names from '../../src/protocol/names.js';
import * as treePaths from '../../src/protocol/tree-paths.js';

// The checks themselves, counted: a folder's manifest put together from pages is checked once
// per path and hash, where each page arrives (validatePage), not a second time when the pages
// are put together (list_files of a 100,000-file tree spent about a third of its CPU on that).
vi.mock('../../src/protocol/tree-paths.js', async (original) => {
  const real = await original<typeof import('../../src/protocol/tree-paths.js')>();
  return { ...real, treePathProblem: vi.fn(real.treePathProblem) };
});
vi.mock('../../src/protocol/names.js', async (original) => {
  const real = await original<typeof import('../../src/protocol/names.js')>();
  return { ...real, isHex64: vi.fn(real.isHex64) };
});

const FILES = 3000;
const PIECE = 16 * 1024;

function tree() {
  const files: TreeEntry[] = Array.from({ length: FILES }, (_, i) => ({
    path: `d${String(Math.floor(i / 100)).padStart(3, '0')}/f${String(i).padStart(5, '0')}`,
    size: 20_000, // two pieces each
  }));
  const pieces = Array.from({ length: 2 * FILES }, (_, i) =>
    createHash('sha256').update(String(i)).digest('hex'),
  );
  const m = validateManifest({ version: 2, size: 20_000 * FILES, pieceSize: PIECE, pieces, files });
  // As they come off the network: parsed JSON, nothing shared with the manifest made here.
  const { root, pages } = pagesOf(m);
  const wire = JSON.parse(JSON.stringify({ root, pages })) as {
    root: unknown;
    pages: { hash: string; page: unknown }[];
  };
  return { m, root: wire.root, pages: wire.pages };
}

const pathChecks = vi.mocked(treePaths.treePathProblem);
const hashChecks = vi.mocked(names.isHex64);

describe('a paged manifest checked once', () => {
  it('checks each path and hash once: as its page arrives, not again when the pages are put together', () => {
    const { m, root, pages } = tree();
    pathChecks.mockClear();
    hashChecks.mockClear();
    const checked = new Map(pages.map((p) => [p.hash, validatePage(p.page)]));
    expect(pathChecks).toHaveBeenCalledTimes(FILES);
    pathChecks.mockClear();
    hashChecks.mockClear();
    const whole = assembleManifest(validateRoot(root), (h) => checked.get(h));
    expect(whole).toEqual(m);
    expect(pathChecks).toHaveBeenCalledTimes(0);
    expect(hashChecks).toHaveBeenCalledTimes(0);

    // A page validatePage did not make (one read back from a store) is checked there, once.
    const raw = new Map(pages.map((p) => [p.hash, p.page]));
    pathChecks.mockClear();
    expect(assembleManifest(validateRoot(root), (h) => raw.get(h) as never)).toEqual(m);
    expect(pathChecks).toHaveBeenCalledTimes(FILES);
    // And refuses a bad one there: a page never passed through validatePage is not trusted.
    const first = pages.find((p) => (p.page as { kind: string }).kind === 'files')!;
    const bad = { kind: 'files', files: [{ path: '../escape', size: 1 }] };
    const err = (() => {
      try {
        assembleManifest(validateRoot(root), (h) => (h === first.hash ? bad : raw.get(h)) as never);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CoterieError);
    expect((err as CoterieError).code).toBe('INVALID_MANIFEST');
  });
});
