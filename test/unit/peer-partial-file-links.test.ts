import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { openPartialFile } from '../../src/peer/files/download/partial-file.js';
import { computeFileId } from '../../src/protocol/manifest.js';
import { manifestFor } from '../fixtures/fake-seeder.js';
import { tempDir } from '../helpers/temp-dir.js';

// Another local user who can write to the destination directory plants links where the
// download will create its files, or swaps the directory for a link between two runs: the
// download refuses (PATH_INVALID), writes nothing through the link, and leaves its target
// byte for byte as it was (src/peer/files/download/safe-open.ts).

const PIECE = 16 * 1024;
const VICTIM = Buffer.from('the victim file: must never change\n');

let root: string;
let dl: string;
let elsewhere: string;
let victim: string;
beforeEach(async () => {
  root = tempDir('coterie-links-').path;
  dl = join(root, 'dl');
  elsewhere = join(root, 'elsewhere');
  await mkdir(dl);
  await mkdir(elsewhere);
  victim = join(elsewhere, 'victim.txt');
  await writeFile(victim, VICTIM);
});

function aFile(pieces = 4) {
  const data = randomBytes(PIECE * pieces);
  const manifest = manifestFor(data, PIECE);
  return { data, manifest, fileId: computeFileId(manifest), dest: join(dl, 'out.bin') };
}

const piece = (data: Buffer, i: number) => data.subarray(i * PIECE, (i + 1) * PIECE);

async function expectVictimUntouched(): Promise<void> {
  expect((await readFile(victim)).equals(VICTIM)).toBe(true);
  expect((await readdir(elsewhere)).sort()).toEqual(['victim.txt']);
}

describe('a link planted beside the destination', () => {
  it.each([
    ['<dest>', ''],
    ['<dest>.part', '.part'],
    ['<dest>.part.resume', '.part.resume'],
    ['the resume temp file', '.part.resume.tmp'],
  ])('at %s is refused with PATH_INVALID, its target untouched', async (_, suffix) => {
    const f = aFile();
    await symlink(victim, `${f.dest}${suffix}`);
    await expect(openPartialFile(f)).rejects.toMatchObject({
      code: 'PATH_INVALID',
      message: expect.stringContaining('symbolic link'),
    });
    await expectVictimUntouched();
    expect(await readlink(`${f.dest}${suffix}`)).toBe(victim);
  });

  it('is refused when dangling too (a link to where the attacker wants a file made)', async () => {
    const f = aFile();
    const wanted = join(elsewhere, 'made-by-coterie');
    for (const suffix of ['', '.part', '.part.resume.tmp']) {
      await symlink(wanted, `${f.dest}${suffix}`);
      await expect(openPartialFile(f)).rejects.toMatchObject({ code: 'PATH_INVALID' });
      await rm(`${f.dest}${suffix}`);
    }
    await expectVictimUntouched();
  });

  it('at <dest>.part of a resumable download is refused, not written through', async () => {
    const f = aFile();
    const first = await openPartialFile(f);
    await first.writePiece(0, piece(f.data, 0));
    await first.close();
    await rm(`${f.dest}.part`);
    await symlink(victim, `${f.dest}.part`);
    await expect(openPartialFile(f)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expectVictimUntouched();
  });

  it('a hard link at <dest>.part (someone else’s file under our name) is refused, not emptied', async () => {
    const f = aFile();
    await link(victim, `${f.dest}.part`);
    await expect(openPartialFile(f)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expectVictimUntouched();
  });

  it('a link or a file that appears at <dest> during the download is left alone: DESTINATION_EXISTS, nothing else left', async () => {
    for (const plant of [
      () => symlink(victim, join(dl, 'out.bin')),
      () => writeFile(join(dl, 'out.bin'), 'mine'),
    ]) {
      const f = aFile(2);
      const file = await openPartialFile(f);
      for (const i of [0, 1]) await file.writePiece(i, piece(f.data, i));
      await plant();
      await expect(file.finish()).rejects.toMatchObject({ code: 'DESTINATION_EXISTS' });
      await expectVictimUntouched();
      expect(await readdir(dl)).toEqual(['out.bin']);
      await rm(f.dest);
    }
    expect(await readFile(victim)).toEqual(VICTIM);
  });
});

describe('the destination directory', () => {
  it('swapped for a link between two runs: the resume is refused, nothing is written where it points', async () => {
    const f = aFile();
    const first = await openPartialFile(f);
    await first.writePiece(0, piece(f.data, 0));
    const { destDir } = first;
    await first.close();
    await rename(dl, join(root, 'dl-moved'));
    await symlink(elsewhere, dl);
    await expect(openPartialFile({ ...f, destDir })).rejects.toMatchObject({
      code: 'PATH_INVALID',
      message: expect.stringContaining(dl),
    });
    await expectVictimUntouched();
    // The real directory still holds the paused download, untouched.
    expect((await readdir(join(root, 'dl-moved'))).sort()).toEqual(['out.bin.part', 'out.bin.part.resume']);
  });

  it('replaced by another real directory between two runs: refused too (device and inode)', async () => {
    const f = aFile();
    const first = await openPartialFile(f);
    const { destDir } = first;
    await first.close();
    await rename(dl, join(root, 'dl-moved'));
    await mkdir(dl);
    await expect(openPartialFile({ ...f, destDir })).rejects.toMatchObject({ code: 'PATH_INVALID' });
    expect(await readdir(dl)).toEqual([]);
  });

  // Through /proc/self/fd (openat semantics); elsewhere the swap is refused at the next use instead.
  it.runIf(process.platform === 'linux')(
    'swapped for a link while the download runs: it goes on in the directory it started in',
    async () => {
      const f = aFile(3);
      const file = await openPartialFile(f);
      await file.writePiece(0, piece(f.data, 0));
      const moved = join(root, 'dl-moved');
      await rename(dl, moved);
      await symlink(elsewhere, dl);
      for (const i of [1, 2]) await file.writePiece(i, piece(f.data, i));
      await file.finish();
      expect((await readFile(join(moved, 'out.bin'))).equals(f.data)).toBe(true);
      expect(await readdir(moved)).toEqual(['out.bin']);
      await expectVictimUntouched();
    },
  );
});
