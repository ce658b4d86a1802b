import { mkdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { wholeTreePages } from '../../src/peer/files/tree-pages.js';
import { TreePieceSource } from '../../src/peer/files/tree-source.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { tempDir } from '../helpers/temp-dir.js';
import { codeOf } from '../helpers/wait.js';

// Whoever can write in a shared folder may swap one of its files, or one of its directories, for a
// symbolic link to a file of the user's of the same size, for the seeder to send that file's bytes
// to the group. The served folder refuses any file it does not reach without a link.

const SIZE = 1000;

describe('a served folder and symbolic links', () => {
  const scratch = tempDir('coterie-tree-links-');
  let root: string;
  let manifest: Manifest;
  const sources: TreePieceSource[] = [];
  const serve = () => {
    const s = new TreePieceSource(root, wholeTreePages(manifest));
    sources.push(s);
    return s;
  };
  /** The piece of `path` (one piece per file here: 1 KiB files, 16 KiB pieces). */
  const pieceOf = (path: string) => manifest.files!.findIndex((f) => f.path === path);

  beforeEach(async () => {
    root = join(scratch.path, `tree-${Date.now()}-${Math.random()}`);
    await mkdir(join(root, 'album'), { recursive: true });
    await writeFile(join(root, 'album', 'a.bin'), Buffer.alloc(SIZE, 1));
    await writeFile(join(root, 'b.bin'), Buffer.alloc(SIZE, 2));
    // The user's secret, outside the folder, of the very size a shared file has.
    await mkdir(join(scratch.path, 'private', 'album'), { recursive: true });
    await writeFile(join(scratch.path, 'private', 'album', 'a.bin'), Buffer.alloc(SIZE, 0x53));
    await writeFile(join(scratch.path, 'secret.bin'), Buffer.alloc(SIZE, 0x53));
    ({ manifest } = await createTreeManifest(root, { pieceSize: 16 * 1024, workers: 1 }));
  });
  afterEach(async () => {
    for (const s of sources.splice(0)) await s.close();
  });

  it('serves the files as shared', async () => {
    const s = serve();
    expect(await s.read(pieceOf('album/a.bin'), 0, SIZE)).toEqual(Buffer.alloc(SIZE, 1));
    expect(await s.read(pieceOf('b.bin'), 0, SIZE)).toEqual(Buffer.alloc(SIZE, 2));
  });

  it('refuses a file swapped for a link to a file of the same size', async () => {
    await rm(join(root, 'b.bin'));
    await symlink(join(scratch.path, 'secret.bin'), join(root, 'b.bin'));
    expect(await codeOf(serve().read(pieceOf('b.bin'), 0, SIZE))).toBe('PIECE_UNAVAILABLE');
  });

  it("refuses the files of a directory swapped for a link, and serves the folder's others", async () => {
    await rename(join(root, 'album'), join(scratch.path, `moved-${Date.now()}`));
    await symlink(join(scratch.path, 'private', 'album'), join(root, 'album'));
    const s = serve();
    expect(await codeOf(s.read(pieceOf('album/a.bin'), 0, SIZE))).toBe('PIECE_UNAVAILABLE');
    expect(await s.read(pieceOf('b.bin'), 0, SIZE)).toEqual(Buffer.alloc(SIZE, 2));
  });

  it('serves a folder shared through a link to it (the root is resolved, not refused)', async () => {
    const link = join(scratch.path, `link-${Date.now()}`);
    await symlink(root, link);
    const s = new TreePieceSource(link, wholeTreePages(manifest));
    sources.push(s);
    expect(await s.read(pieceOf('album/a.bin'), 0, SIZE)).toEqual(Buffer.alloc(SIZE, 1));
  });
});
