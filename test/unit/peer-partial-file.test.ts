import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPartialFile, packBits, unpackBits } from '../../src/peer/download/partial-file.js';
import { computeFileId, type Manifest } from '../../src/protocol/manifest.js';

const PIECE = 16 * 1024;

function manifestOf(data: Buffer): Manifest {
  const pieces: string[] = [];
  for (let o = 0; o < data.length; o += PIECE) {
    pieces.push(
      createHash('sha256')
        .update(data.subarray(o, o + PIECE))
        .digest('hex'),
    );
  }
  return { version: 1, size: data.length, pieceSize: PIECE, pieces };
}

const piece = (data: Buffer, i: number) => data.subarray(i * PIECE, (i + 1) * PIECE);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coterie-partial-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('partial file', () => {
  it('writes pieces by position and renames to dest only at finish', async () => {
    const data = randomBytes(PIECE * 3 + 100);
    const manifest = manifestOf(data);
    const dest = join(dir, 'out.bin');
    const f = await openPartialFile({ manifest, fileId: computeFileId(manifest), dest });
    for (const i of [3, 1, 0, 2]) await f.writePiece(i, piece(data, i));
    expect(await stat(dest).catch(() => null)).toBeNull();
    expect(await f.read(1, 10, 20)).toEqual(piece(data, 1).subarray(10, 30));
    await f.finish();
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(await stat(`${dest}.part`).catch(() => null)).toBeNull();
    expect(await stat(`${dest}.part.resume`).catch(() => null)).toBeNull();
  });

  it('resumes kept pieces and drops those whose bytes no longer match', async () => {
    const data = randomBytes(PIECE * 4);
    const manifest = manifestOf(data);
    const fileId = computeFileId(manifest);
    const dest = join(dir, 'out.bin');
    const f = await openPartialFile({ manifest, fileId, dest });
    await f.writePiece(0, piece(data, 0));
    await f.writePiece(2, piece(data, 2));
    await f.close();
    // Damage piece 2 on disk behind the resume file's back.
    const h = await import('node:fs/promises').then((m) => m.open(`${dest}.part`, 'r+'));
    await h.write(Buffer.from('xx'), 0, 2, 2 * PIECE + 5);
    await h.close();
    const g = await openPartialFile({ manifest, fileId, dest });
    expect(g.resumedPieces).toBe(1);
    expect([0, 1, 2, 3].map((i) => g.hasPiece(i))).toEqual([true, false, false, false]);
    await g.close();
  });

  it('ignores a resume file of another file', async () => {
    const a = randomBytes(PIECE * 2);
    const ma = manifestOf(a);
    const dest = join(dir, 'out.bin');
    const f = await openPartialFile({ manifest: ma, fileId: computeFileId(ma), dest });
    await f.writePiece(0, piece(a, 0));
    await f.close();
    const b = randomBytes(PIECE * 2);
    const mb = manifestOf(b);
    const g = await openPartialFile({ manifest: mb, fileId: computeFileId(mb), dest });
    expect(g.verifiedCount()).toBe(0);
    await g.close();
  });

  it('refuses an existing destination unless asked to overwrite', async () => {
    const data = randomBytes(100);
    const manifest = manifestOf(data);
    const dest = join(dir, 'out.bin');
    await writeFile(dest, 'old');
    await expect(openPartialFile({ manifest, fileId: computeFileId(manifest), dest })).rejects.toMatchObject({
      code: 'DESTINATION_EXISTS',
    });
    await expect(
      openPartialFile({ manifest, fileId: computeFileId(manifest), dest: join(dir, 'nope', 'x') }),
    ).rejects.toMatchObject({ code: 'PATH_INVALID' });
    const f = await openPartialFile({ manifest, fileId: computeFileId(manifest), dest, overwrite: true });
    await f.writePiece(0, data);
    await f.finish();
    expect((await readFile(dest)).equals(data)).toBe(true);
  });

  it('handles a 0-byte file', async () => {
    const manifest: Manifest = { version: 1, size: 0, pieceSize: PIECE, pieces: [] };
    const dest = join(dir, 'empty');
    const f = await openPartialFile({ manifest, fileId: computeFileId(manifest), dest });
    await f.finish();
    expect((await stat(dest)).size).toBe(0);
  });

  it('packs bitfields most significant bit first (resume format v1 fixture)', () => {
    const bits = new Uint8Array([1, 0, 1, 0, 0, 0, 0, 0, 1, 1]);
    const packed = packBits(bits);
    expect(packed.toString('hex')).toBe('a0c0');
    expect(unpackBits(packed, 10)).toEqual(bits);
  });
});
