import { spawnSync } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type DownloadOptions, download } from '../../src/peer/files/download/index.js';
import { randomShare, type TestFile, transferSetup } from '../fixtures/transfer-harness.js';
import { type TempDir, tempDir } from '../helpers/temp-dir.js';
import { mountTmpfs, type Tmpfs, tmpfsOrSkip } from '../helpers/tmpfs.js';
import { codeOf } from '../helpers/wait.js';

// A download onto a small tmpfs of its own, from a real seeder over TLS: a disk that fills
// (ENOSPC at any write, the resume file, the fsync or the final link) ends the download
// with DISK_FULL and nothing left beside it; a file that exactly fits completes.
// preallocate: false exercises the write path (with it the room is reserved up front).

const KiB = 1024;
const MiB = 1024 * KiB;

const CAN_MOUNT = tmpfsOrSkip('disk-full');

describe.runIf(CAN_MOUNT)('a download on a full disk', () => {
  const setup = transferSetup();
  let src: TempDir;
  let disk: Tmpfs;

  beforeAll(() => {
    src = tempDir('coterie-disk-full-src-');
  });
  afterAll(async () => {
    src?.remove();
  });
  beforeEach(() => {
    disk = mountTmpfs(8 * MiB);
  });
  afterEach(() => {
    disk.unmount();
  });

  async function options(file: TestFile, extra: Partial<DownloadOptions> = {}): Promise<DownloadOptions> {
    const seeder = await setup.seed(file);
    return setup.options(file, join(disk.dir, 'out.bin'), { seeders: [seeder.info], ...extra });
  }

  /** Another process takes every free byte of the tmpfs (dd stops at ENOSPC). */
  const fillDisk = () => {
    spawnSync('dd', ['if=/dev/zero', `of=${join(disk.dir, 'filler')}`, 'bs=64k'], { stdio: 'ignore' });
    expect(disk.free()).toBeLessThan(64 * KiB);
  };

  it('filled by another process during the download (preallocate off): DISK_FULL, nothing left, the next download works', async () => {
    const file = await randomShare(src.path, 4 * MiB, 16 * KiB);
    let filled = false;
    const o = await options(file, {
      preallocate: false,
      // Synchronously, at the first verified piece: the download cannot get ahead of the filler.
      onEvent: (e) => {
        if (e.type === 'pieceVerified' && !filled) {
          filled = true;
          fillDisk();
        }
      },
    });
    const err = await download(o).done.then(
      () => null,
      (e: unknown) => e,
    );
    expect(filled).toBe(true);
    expect(err).toMatchObject({ code: 'DISK_FULL', message: expect.stringMatching(/needs .* free/) });
    expect(await readdir(disk.dir)).toEqual(['filler']);
    // Room again: the same download to the same place completes.
    await rm(join(disk.dir, 'filler'));
    const again = await options(file, { preallocate: false });
    await download(again).done;
    expect((await readFile(again.dest)).equals(file.data)).toBe(true);
    expect(await readdir(disk.dir)).toEqual(['out.bin']);
  });

  it.each([true, false])(
    'a file that exactly fits the free space completes (preallocate %s)',
    async (preallocate) => {
      const file = await randomShare(src.path, disk.free(), 64 * KiB);
      const o = await options(file, { preallocate });
      await download(o).done;
      expect((await readFile(o.dest)).equals(file.data)).toBe(true);
      expect(await readdir(disk.dir)).toEqual(['out.bin']);
    },
  );

  it('one page more than fits (preallocate off): DISK_FULL at the last writes, nothing left', async () => {
    const file = await randomShare(src.path, disk.free() + 4 * KiB, 64 * KiB);
    const o = await options(file, { preallocate: false });
    expect(await codeOf(download(o).done)).toBe('DISK_FULL');
    expect(await readdir(disk.dir)).toEqual([]);
  });
});
