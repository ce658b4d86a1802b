import { randomBytes } from 'node:crypto';
import {
  mkdir,
  readdir,
  readFile,
  readlink,
  realpath,
  rename,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { openPartialFile } from '../../src/peer/files/download/partial-file.js';
import { PartialTree } from '../../src/peer/files/download/partial-tree.js';
import { canPreallocate } from '../../src/peer/files/download/preallocate.js';
import { computeFileId, type Manifest, treeLayout } from '../../src/protocol/manifest.js';
import { realClock } from '../../src/wire/index.js';
import { manifestFor } from '../fixtures/fake-seeder.js';
import { opensDirect } from '../helpers/direct-io.js';
import { suiteTempDir } from '../helpers/temp-dir.js';

// A folder download checks each of its directories once, not once per file (tree-dest.ts: TreeDirs),
// and a small file costs few file-system calls (partial-file.ts). Neither may loosen what a folder
// download writes where: a directory checked once is still the only one its files go to.

const PIECE = 16 * 1024;

/** A tree at `src` with one-piece files at `paths`, and a PartialTree of it rooted at `root`. */
async function treeOf(src: string, root: string, paths: string[], resuming = false) {
  for (const p of paths) {
    await mkdir(join(src, p, '..'), { recursive: true });
    await writeFile(join(src, p), randomBytes(1000));
  }
  const { manifest, fileId } = await createTreeManifest(src, { pieceSize: PIECE, workers: 1 });
  const tree = new PartialTree({
    manifest,
    fileId,
    root,
    resuming,
    clock: realClock,
    directIo: false,
    preallocate: false,
  });
  tree.select(manifest.files!.keys());
  const write = async (path: string) => {
    const k = manifest.files!.findIndex((f) => f.path === path);
    await tree.writePiece(treeLayout(manifest).firstPiece[k]!, await readFile(join(src, path)));
  };
  return { tree, write };
}

/**
 * This process's descriptors held open on something under `under` (the test's own directory): the
 * process's whole count also moves with what the test runner and the threadpool open meanwhile.
 * A resume file being written (`.part.resume.tmp`) is not held: a part file's first piece starts
 * one in the background (partial-file.ts), which CI's Node 24 run caught open (6, not 5).
 */
const openDescriptors = async (under: string) => {
  const root = await realpath(under);
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.endsWith('.part.resume.tmp')) continue;
    if (target === root || target.startsWith(`${root}/`)) n++;
  }
  return n;
};

describe('a folder download’s directories, checked once each', () => {
  const dir = suiteTempDir('coterie-partial-tree-places-');

  it('refuses a directory of the tree found as a link, writing nothing where it points', async () => {
    const root = join(dir.path, 'planted');
    const elsewhere = join(dir.path, 'planted-elsewhere');
    await mkdir(root);
    await mkdir(elsewhere);
    await symlink(elsewhere, join(root, 'a'));
    const { tree } = await treeOf(join(dir.path, 'planted-src'), root, ['a/f1', 'b/f2'], true);
    await expect(tree.open(async () => '')).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await tree.close();
    expect(await readdir(elsewhere)).toEqual([]);
  });

  it('refuses a checked directory swapped afterwards, for a link or another directory, writing nothing there', async () => {
    const root = join(dir.path, 'swapped');
    const elsewhere = join(dir.path, 'swapped-elsewhere');
    const paths = ['a/b/f1', 'a/b/f2', 'c/f3', 'c/f4'];
    const { tree, write } = await treeOf(join(dir.path, 'swapped-src'), root, paths);
    await tree.open(async () => '');
    await write('a/b/f1');
    await write('c/f3');
    // `a` (a parent of the files' directory) becomes a link to a look-alike tree; `c`, another directory.
    await mkdir(join(elsewhere, 'b'), { recursive: true });
    await rename(join(root, 'a'), join(root, 'a-moved'));
    await symlink(elsewhere, join(root, 'a'));
    await rename(join(root, 'c'), join(root, 'c-moved'));
    await mkdir(join(root, 'c'));
    await expect(write('a/b/f2')).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(write('c/f4')).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await tree.close();
    expect(await readdir(join(elsewhere, 'b'))).toEqual([]);
    expect(await readdir(join(root, 'c'))).toEqual([]);
    expect(await readdir(join(root, 'a-moved', 'b'))).toEqual(['f1']);
  });
});

describe('a folder download’s open directories', () => {
  const dir = suiteTempDir('coterie-partial-tree-shared-dir-');

  it('opens a directory once for the files open in it, and still refuses a link planted at a part file', async () => {
    const src = join(dir.path, 'src');
    await mkdir(join(src, 'd'), { recursive: true });
    const names = ['f1', 'f2', 'f3', 'f4', 'f5'];
    for (const n of names) await writeFile(join(src, 'd', n), randomBytes(PIECE + 100));
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
    });
    tree.select(manifest.files!.keys());
    await tree.open(async () => '');
    const firstPieceOf = async (k: number) =>
      tree.writePiece(
        treeLayout(manifest).firstPiece[k]!,
        (await readFile(join(src, manifest.files![k]!.path))).subarray(0, PIECE),
      );
    const before = await openDescriptors(dir.path);
    for (const k of [0, 1, 2, 3]) await firstPieceOf(k);
    // Four files open, each with its part file, and their directory once (it was once each).
    expect(await openDescriptors(dir.path)).toBe(before + 4 + 1);
    const target = join(dir.path, 'target');
    await writeFile(target, 'mine');
    await symlink(target, join(root, 'd', 'f5.part'));
    await expect(firstPieceOf(4)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    expect(await readFile(target, 'utf8')).toBe('mine');
    await tree.close();
    expect(await openDescriptors(dir.path)).toBe(before);
  });
});

describe('a small file’s part file', () => {
  const dir = suiteTempDir('coterie-partial-small-');
  const manifestOf = (data: Buffer): Manifest => manifestFor(data, PIECE);

  it('saves no resume file before its first piece; without a whole piece, holds no O_DIRECT descriptor and reserves no blocks', async () => {
    await writeFile(join(dir.path, 'probe'), '');
    const direct = opensDirect(join(dir.path, 'probe'));
    const reserves = process.platform === 'linux' && canPreallocate();
    for (const [name, bytes, descriptors, reserved] of [
      ['small.bin', 1000, 2, false], // its directory and its part file
      ['whole.bin', 2 * PIECE, direct ? 3 : 2, reserves], // and the O_DIRECT one, where the file system has it
    ] as const) {
      const manifest = manifestOf(randomBytes(bytes));
      const dest = join(dir.path, name);
      const before = await openDescriptors(dir.path);
      const fileId = computeFileId(manifest);
      const f = await openPartialFile({ manifest, fileId, dest, directIo: true, preallocate: true });
      expect(await openDescriptors(dir.path), name).toBe(before + descriptors);
      expect((await stat(`${dest}.part`)).blocks * 512 >= bytes, name).toBe(reserved);
      // Nothing to resume yet: a one-piece file finished by its only piece never writes one.
      expect(await stat(`${dest}.part.resume`).catch(() => null), name).toBeNull();
      await f.close();
      // Stopped: its state is kept for a later run.
      expect((await stat(`${dest}.part.resume`)).isFile(), name).toBe(true);
      expect(await openDescriptors(dir.path), name).toBe(before);
    }
  });
});
