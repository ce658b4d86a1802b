import { chmodSync, mkdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { awaitHashWorkers, startTreeHashWorker } from '../../src/core/piece-hash.js';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { CoterieError } from '../../src/protocol/errors.js';
import {
  computeFileId,
  type Manifest,
  pieceLength,
  treeLayout,
  validateManifest,
} from '../../src/protocol/manifest.js';
import { foldCase } from '../../src/protocol/tree-paths.js';
import { tempDir } from '../helpers/temp-dir.js';

// Folder manifests (issue 17): paths from the network are checked before anything touches the
// disk, pieces never span two files, and the id covers the whole tree.

const HASH = 'a'.repeat(64);
const PIECE = 16 * 1024;

/** A version 2 manifest of these files, one piece per 16 KiB of each (hashes are placeholders). */
function tree(files: { path: string; size: number; executable?: true }[]): Record<string, unknown> {
  const count = files.reduce((n, f) => n + Math.ceil(f.size / PIECE), 0);
  return {
    version: 2,
    size: files.reduce((n, f) => n + f.size, 0),
    pieceSize: PIECE,
    pieces: new Array(count).fill(HASH),
    files,
  };
}

function refusal(files: { path: string; size: number }[] | Record<string, unknown>): string {
  try {
    validateManifest(Array.isArray(files) ? tree(files) : files);
  } catch (err) {
    expect(err).toBeInstanceOf(CoterieError);
    expect((err as CoterieError).code).toBe('INVALID_MANIFEST');
    return (err as Error).message;
  }
  throw new Error('accepted');
}

describe('folder manifests', () => {
  it('refuses every bad path kind with INVALID_MANIFEST', () => {
    const one = (path: string) => refusal([{ path, size: 1 }]);
    expect(one('../x')).toContain("'..'");
    expect(one('a/../../x')).toContain("'..'");
    expect(one('/etc/passwd')).toContain('absolute');
    expect(one('a\u0000b')).toContain('control character');
    expect(one('a\\..\\x')).toContain('backslash');
    expect(one('C:/x')).toContain('<>:"|?*');
    expect(one('docs/CON')).toContain('Windows reserves');
    expect(one('lpt1.txt')).toContain('Windows reserves');
    expect(one('dot./x')).toContain('dot or space');
    expect(one('a//b')).toContain('empty component');
    expect(one('./a')).toContain("'.'");
    expect(one('')).toContain('empty');
    expect(
      refusal([
        { path: 'A.txt', size: 1 },
        { path: 'a.txt', size: 1 },
      ]),
    ).toContain('only in case');
    expect(
      refusal([
        { path: 'a', size: 1 },
        { path: 'a/b', size: 1 },
      ]),
    ).toContain('file and a directory');
    expect(
      refusal([
        { path: 'b', size: 1 },
        { path: 'a', size: 1 },
      ]),
    ).toContain('out of order');
    // A link (or any entry that is not a plain file) has a field a file does not.
    expect(refusal(tree([{ path: 'l', size: 1, link: '/etc/passwd' } as never]))).toContain("'link' field");
    expect(refusal({ ...tree([{ path: 'a', size: 1 }]), size: 2 })).toContain('add up');
    expect(refusal({ ...tree([{ path: 'a', size: 1 }]), version: 1 })).toContain('only a version 2');
  });

  it('keeps whatever it accepts inside the destination (fuzzed)', () => {
    const segment = fc.oneof(
      fc.constantFrom('..', '.', '', 'CON', 'nul.txt', 'a', 'B', 'b', 'x y', 'é', 'e\u0301', 'a.', '~'),
      fc.string({ maxLength: 6 }),
      fc.string({ unit: 'binary', maxLength: 4 }),
    );
    const path = fc.oneof(
      fc.array(segment, { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
      fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('\\')),
      fc.string({ maxLength: 12 }).map((s) => `/${s}`),
    );
    const root = '/tmp/coterie-dest';
    fc.assert(
      fc.property(fc.uniqueArray(path, { minLength: 1, maxLength: 6 }), (paths) => {
        const files = [...paths].sort().map((p) => ({ path: p, size: 1 }));
        let m: Manifest;
        try {
          m = validateManifest(tree(files));
        } catch (err) {
          return (err as CoterieError).code === 'INVALID_MANIFEST';
        }
        const folded = new Set<string>();
        for (const f of m.files!) {
          const rel = relative(root, resolve(root, f.path));
          expect(rel.startsWith('..') || isAbsolute(rel) || rel === '').toBe(false);
          // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it must not hold
          expect(f.path).not.toMatch(/[\u0000-\u001f\\<>:"|?*]/);
          expect(f.path.split('/')).not.toContain('..');
          folded.add(foldCase(f.path));
        }
        expect(folded.size).toBe(m.files!.length);
        return true;
      }),
      { numRuns: 3000 },
    );
  });

  it('folds case as the full rule does, ASCII or not, and finds a file where a deep directory is', () => {
    const full = (p: string) => p.normalize('NFC').toLowerCase().toUpperCase().toLowerCase();
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('ß', 'ǅ', 'İx', 'Ωa')),
        (p) => foldCase(p) === full(p),
      ),
      { numRuns: 2000 },
    );
    expect(
      refusal([
        { path: 'a/b/c/D', size: 1 },
        { path: 'a/b/c/d/e', size: 1 },
      ]),
    ).toContain('file and a directory');
  });

  it('aligns pieces to files: no piece spans two, an empty file has none', () => {
    const m = validateManifest(
      tree([
        { path: 'a', size: PIECE + 5 },
        { path: 'b', size: 0 },
        { path: 'c', size: 7 },
      ]),
    );
    const layout = treeLayout(m);
    expect([...layout.firstPiece]).toEqual([0, 2, 2, 3]);
    expect([0, 1, 2].map((i) => pieceLength(m, i))).toEqual([PIECE, 5, 7]);
    expect([0, 1, 2].map((i) => layout.fileOfPiece(i))).toEqual([0, 0, 2]);
    expect(layout.fileOfPiece(3)).toBe(-1);
  });

  it('gives an id that covers every path, size and mode', () => {
    const base = [
      { path: 'a', size: 3 },
      { path: 'b/c', size: 4 },
    ];
    const id = computeFileId(validateManifest(tree(base)));
    expect(computeFileId(validateManifest(tree([base[0]!, { path: 'b/d', size: 4 }])))).not.toBe(id);
    expect(
      computeFileId(validateManifest(tree([base[0]!, { path: 'b/c', size: 4, executable: true }]))),
    ).not.toBe(id);
    // A single file keeps its version 1 encoding: no files field, the id of before.
    const single = validateManifest({ version: 1, size: 3, pieceSize: PIECE, pieces: [HASH] });
    expect(single.files).toBeUndefined();
    expect(computeFileId(single)).toBe(
      computeFileId({ version: 1, size: 3, pieceSize: PIECE, pieces: [HASH] }),
    );
  });

  it('builds the same manifest from disk with one worker or several, and refuses links', async () => {
    const dir = tempDir('coterie-tree-');
    try {
      const src = join(dir.path, 'src');
      for (const [p, size] of [
        ['a.bin', 100_000],
        ['d/e.bin', 40_000],
        ['d/f/g.txt', 0],
        ['z.sh', 10],
      ] as const) {
        mkdirSync(join(src, p, '..'), { recursive: true });
        writeFileSync(join(src, p), Buffer.alloc(size, p.length));
      }
      chmodSync(join(src, 'z.sh'), 0o755);
      const one = await createTreeManifest(src, { workers: 1, pieceSize: PIECE });
      const many = await createTreeManifest(src, { workers: 4, pieceSize: PIECE });
      expect(many.fileId).toBe(one.fileId);
      expect(one.manifest.files!.map((f) => f.path)).toEqual(['a.bin', 'd/e.bin', 'd/f/g.txt', 'z.sh']);
      expect(one.manifest.files!.at(-1)!.executable).toBe(true);
      expect(one.manifest.pieces).toHaveLength(7 + 3 + 0 + 1);
      symlinkSync('/etc/passwd', join(src, 'link'));
      await expect(createTreeManifest(src)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    } finally {
      dir.remove();
    }
  });

  it('reports progress by the step, not once a file', async () => {
    const dir = tempDir('coterie-tree-');
    try {
      for (let i = 0; i < 300; i++) {
        mkdirSync(join(dir.path, `d${i % 3}`), { recursive: true });
        writeFileSync(join(dir.path, `d${i % 3}`, `f${i}`), Buffer.alloc(1000, i));
      }
      const calls: number[] = [];
      await createTreeManifest(dir.path, { workers: 1, onProgress: (done) => calls.push(done) });
      // 300 KB is far below one progress step (64 MiB): one report at the end, not 300.
      expect(calls).toEqual([300_000]);
    } finally {
      dir.remove();
    }
  });

  it('refuses a file that changed since the walk, or became a link, on its open descriptor', async () => {
    const dir = tempDir('coterie-tree-');
    try {
      const file = join(dir.path, 'a.bin');
      writeFileSync(file, Buffer.alloc(5000, 1));
      const { mtimeMs } = statSync(file);
      const hash = (f: { size: number; mtimeMs: number }) =>
        awaitHashWorkers(
          [
            startTreeHashWorker({
              files: [{ path: file, digestBase: 0, ...f }],
              pieceSize: PIECE,
              chunkBytes: PIECE,
              digests: new SharedArrayBuffer(32),
              progressStepBytes: PIECE,
            }),
          ],
          () => {},
          undefined,
          'the folder',
        );
      await hash({ size: 5000, mtimeMs });
      await expect(hash({ size: 5000, mtimeMs: mtimeMs - 1000 })).rejects.toMatchObject({
        code: 'PATH_INVALID',
        message: expect.stringContaining('changed while it was hashed'),
      });
      writeFileSync(join(dir.path, 'b.bin'), Buffer.alloc(5000, 1));
      rmSync(file);
      symlinkSync(join(dir.path, 'b.bin'), file);
      const b = statSync(join(dir.path, 'b.bin'));
      await expect(hash({ size: 5000, mtimeMs: b.mtimeMs })).rejects.toMatchObject({ code: 'PATH_INVALID' });
    } finally {
      dir.remove();
    }
  });
});
