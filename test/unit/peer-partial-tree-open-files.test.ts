import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { PartialTree } from '../../src/peer/files/download/partial-tree.js';
import { treeLayout } from '../../src/protocol/manifest.js';
import { realClock } from '../../src/wire/index.js';
import { suiteTempDir } from '../helpers/temp-dir.js';

// A folder download keeps at most maxOpenFiles partial files open (download/open-files.ts): pieces
// that come in scattered order, a round over every file at a time, close the least recently used
// file and open it again for its next piece, its verified pieces kept without a re-check.

const PIECE = 16 * 1024;
const FILES = 10;
const PIECES_PER_FILE = 4;

describe('a folder download’s open partial files', () => {
  const dir = suiteTempDir('coterie-partial-tree-open-');

  it('stay within the limit while pieces come a round over every file at a time, and the tree is byte-identical', async () => {
    const src = join(dir.path, 'src');
    for (let i = 0; i < FILES; i++) {
      await mkdir(join(src, `d${i % 3}`), { recursive: true });
      await writeFile(join(src, `d${i % 3}`, `f${i}.bin`), randomBytes(PIECES_PER_FILE * PIECE - i));
    }
    const { manifest, fileId } = await createTreeManifest(src, { pieceSize: PIECE, workers: 1 });
    const root = join(dir.path, 'dest');
    const tree = new PartialTree({
      manifest,
      fileId,
      root,
      resuming: false,
      clock: realClock,
      directIo: false,
      preallocate: false,
      maxOpenFiles: 3,
    });
    tree.select(manifest.files!.keys());
    await tree.open(async () => '');
    const { firstPiece } = treeLayout(manifest);
    const pieceOf = async (k: number, r: number) => {
      const bytes = await readFile(join(src, ...manifest.files![k]!.path.split('/')));
      return bytes.subarray(r * PIECE, (r + 1) * PIECE);
    };
    for (let r = 0; r < PIECES_PER_FILE; r++) {
      // A round: one piece of each file, all written at once.
      const round = manifest.files!.map(async (_, k) =>
        tree.writePiece(firstPiece[k]! + r, await pieceOf(k, r)),
      );
      await Promise.all(round);
      expect(tree.openFiles.peak).toBeLessThanOrEqual(3);
      if (r === 0) {
        // A file closed to make room still has its piece, and serves it (opened again to read it).
        expect(manifest.files!.every((_, k) => tree.hasPiece(firstPiece[k]!))).toBe(true);
        const read = await tree.read(firstPiece[0]!, 0, 100);
        expect(read.equals((await pieceOf(0, 0)).subarray(0, 100))).toBe(true);
      }
    }
    await tree.finish();
    expect(tree.openFiles).toMatchObject({ max: 3, peak: 3 });
    expect(tree.openFiles.evictions).toBeGreaterThanOrEqual(FILES);
    for (const f of manifest.files!) {
      const at = (d: string) => readFile(join(d, ...f.path.split('/')));
      expect((await at(root)).equals(await at(src)), f.path).toBe(true);
    }
    await tree.close();
  });
});
