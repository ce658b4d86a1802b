import { createHash, randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createManifest, hashPiece, verifyPiece } from '../../src/core/manifest.js';
import { computeFileId, validateManifest } from '../../src/protocol/manifest.js';
import { suiteTempDir } from '../helpers/temp-dir.js';

const dir = suiteTempDir('coterie-manifest-').path;
afterAll(async () => {});

async function file(name: string, data: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, data);
  return path;
}

describe('createManifest', () => {
  it('hashes a 0-byte file into a manifest with no pieces', async () => {
    const { manifest, fileId } = await createManifest(await file('empty', Buffer.alloc(0)));
    expect(manifest).toEqual({ version: 1, size: 0, pieceSize: 64 * 1024, pieces: [] });
    expect(fileId).toBe(computeFileId(manifest));
  });

  it('handles a size that is not a multiple of the piece size', async () => {
    const data = randomBytes(3 * 16384 + 123);
    const { manifest } = await createManifest(await file('odd', data), { pieceSize: 16384 });
    expect(validateManifest(manifest)).toEqual(manifest);
    expect(manifest.pieces).toHaveLength(4);
    expect(manifest.pieces[3]).toBe(
      createHash('sha256')
        .update(data.subarray(3 * 16384))
        .digest('hex'),
    );
    expect(verifyPiece(manifest, 3, data.subarray(3 * 16384))).toBe(true);
    expect(verifyPiece(manifest, 0, data.subarray(0, 16384))).toBe(true);
    expect(verifyPiece(manifest, 0, data.subarray(1, 16385))).toBe(false);
    expect(verifyPiece(manifest, 3, data.subarray(3 * 16384, 3 * 16384 + 100))).toBe(false);
    expect(verifyPiece(manifest, 4, Buffer.alloc(0))).toBe(false);
    expect(hashPiece(data.subarray(0, 16384))).toBe(manifest.pieces[0]);
  });

  it('gives the same id for the same bytes, and the worker and main-thread paths agree', async () => {
    const data = randomBytes(5 * 1024 * 1024 + 777);
    const a = await file('a', data);
    const b = await file('b', data);
    const progress: number[] = [];
    const single = await createManifest(a, { workers: 1, pieceSize: 16384 });
    const threaded = await createManifest(b, {
      workers: 2,
      workerThresholdBytes: 0,
      pieceSize: 16384,
      onProgress: (done, total) => {
        expect(total).toBe(data.length);
        progress.push(done);
      },
    });
    expect(threaded).toEqual(single);
    expect(progress.at(-1)).toBe(data.length);
    expect([...progress].sort((x, y) => x - y)).toEqual(progress);
    const three = await createManifest(a, { workers: 3, workerThresholdBytes: 0, pieceSize: 16384 });
    expect(three.fileId).toBe(single.fileId);
    expect((await createManifest(a)).fileId).toBe((await createManifest(b)).fileId);
    // one different byte, another id
    data[12345] = (data[12345]! + 1) % 256;
    expect((await createManifest(await file('c', data))).fileId).not.toBe((await createManifest(a)).fileId);
  });

  it('stops when aborted, on either path', async () => {
    const path = await file('abort', randomBytes(2 * 1024 * 1024));
    for (const workers of [1, 2]) {
      const ac = new AbortController();
      const run = createManifest(path, {
        workers,
        workerThresholdBytes: 0,
        pieceSize: 16384,
        signal: ac.signal,
        onProgress: () => ac.abort(new Error('stop')),
      });
      ac.abort(new Error('stop'));
      await expect(run).rejects.toThrow('stop');
    }
  });

  it('refuses directories and missing files with PATH_INVALID', async () => {
    await expect(createManifest(dir)).rejects.toMatchObject({ code: 'PATH_INVALID' });
    await expect(createManifest(join(dir, 'nope'))).rejects.toMatchObject({ code: 'PATH_INVALID' });
  });
});
