import { randomBytes } from 'node:crypto';
import { readdir, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { download } from '../../src/peer/files/download/index.js';
import { openPartialFile } from '../../src/peer/files/download/partial-file.js';
import { canPreallocate } from '../../src/peer/files/download/preallocate.js';
import { computeFileId, type Manifest } from '../../src/protocol/manifest.js';
import { createIdentity, type PeerIdentity } from '../../src/wire/identity.js';
import { manifestFor } from '../fixtures/fake-seeder.js';
import { tempDir } from '../helpers/temp-dir.js';

// A download reserves its part file's blocks when it opens (src/peer/download/preallocate.ts,
// native/preallocate.c): a file that cannot fit is DISK_FULL at once, and what was reserved
// is on disk before the first piece arrives.

const MiB = 1024 * 1024;
const allocatedBytes = async (path: string) => (await stat(path)).blocks * 512;

/** A manifest of `size` bytes whose pieces are never fetched (only the layout matters here). */
function layoutOf(size: number, pieceSize: number): Manifest {
  const count = Math.ceil(size / pieceSize);
  return { version: 1, size, pieceSize, pieces: Array.from({ length: count }, () => '0'.repeat(64)) };
}

/** A file 1 GiB larger than `dir`'s free space: sparse files that big are fine on ext4, xfs and tmpfs; reserving it is not. */
async function layoutTooBigFor(dir: string): Promise<Manifest> {
  const fs = await statfs(dir);
  return layoutOf(fs.bavail * fs.bsize + 1024 * MiB, 64 * MiB);
}

let dir: string;
beforeEach(async () => {
  dir = tempDir('coterie-prealloc-').path;
});

describe('preallocation', () => {
  // Elsewhere part files stay sparse; on Linux a missing build is a broken install.
  it.runIf(process.platform === 'linux')('is built on Linux (npm ci compiles native/preallocate.c)', () => {
    expect(canPreallocate()).toBe(true);
  });

  it.runIf(process.platform === 'linux')(
    "reserves the part file's blocks before any piece is written; a sparse one has none",
    async () => {
      const manifest = layoutOf(64 * MiB, MiB);
      const fileId = computeFileId(manifest);
      const reserved = await openPartialFile({
        manifest,
        fileId,
        dest: join(dir, 'a.bin'),
        preallocate: true,
      });
      const sparse = await openPartialFile({ manifest, fileId, dest: join(dir, 'b.bin') });
      try {
        expect(await allocatedBytes(reserved.partPath)).toBeGreaterThanOrEqual(manifest.size);
        expect(await allocatedBytes(sparse.partPath)).toBeLessThan(MiB);
        expect((await stat(reserved.partPath)).size).toBe(manifest.size);
      } finally {
        await reserved.close();
        await sparse.close();
      }
    },
  );

  it('keeps the verified pieces of a resumed part file while it fills the rest', async () => {
    const data = randomBytes(4 * MiB + 123);
    const manifest = manifestFor(data, MiB);
    const fileId = computeFileId(manifest);
    const dest = join(dir, 'out.bin');
    const first = await openPartialFile({ manifest, fileId, dest });
    await first.writePiece(1, data.subarray(MiB, 2 * MiB));
    await first.writePiece(4, data.subarray(4 * MiB));
    await first.close();
    const again = await openPartialFile({ manifest, fileId, dest, preallocate: true });
    try {
      expect(again.resumedPieces).toBe(2);
      // Buffer.equals: vitest's toEqual walks a MiB byte by byte for seconds.
      expect((await again.read(1, 0, MiB)).equals(data.subarray(MiB, 2 * MiB))).toBe(true);
      expect((await again.read(4, 0, 123)).equals(data.subarray(4 * MiB))).toBe(true);
      if (process.platform === 'linux') {
        expect(await allocatedBytes(again.partPath)).toBeGreaterThanOrEqual(manifest.size);
      }
    } finally {
      await again.close();
    }
  });

  it('refuses a file larger than the free space with DISK_FULL, leaving nothing behind', async () => {
    const manifest = await layoutTooBigFor(dir);
    const dest = join(dir, 'huge.bin');
    const err = await openPartialFile({
      manifest,
      fileId: computeFileId(manifest),
      dest,
      preallocate: true,
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'DISK_FULL', details: { neededBytes: manifest.size } });
    expect((err as Error).message).toMatch(/needs .* GiB more .* free: free some space/);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('a download on a disk too small for it', () => {
  let me: PeerIdentity;
  beforeAll(async () => {
    me = await createIdentity();
  });

  it('fails with DISK_FULL before it connects to anyone, and leaves nothing at dest', async () => {
    const manifest = await layoutTooBigFor(dir);
    const dest = join(dir, 'out.bin');
    let dialled = 0;
    const h = download({
      manifest,
      fileId: computeFileId(manifest),
      dest,
      seeders: [{ peerId: 'a'.repeat(64), address: { host: '127.0.0.1', port: 1 }, score: 1 }],
      ticket: 't',
      identity: me,
      dial: () => {
        dialled++;
        return Promise.reject(new Error('no seeder in this test'));
      },
    });
    await expect(h.done).rejects.toMatchObject({ code: 'DISK_FULL' });
    expect(dialled).toBe(0);
    expect(await readdir(dir)).toEqual([]);
  });
});
