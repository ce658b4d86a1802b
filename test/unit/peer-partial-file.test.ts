import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { createPieceHasher } from '../../src/peer/files/download/hasher.js';
import { AlignedSlotPool } from '../../src/peer/files/download/io-memory.js';
import { openPartialFile } from '../../src/peer/files/download/partial-file.js';
import { computeFileId, type Manifest } from '../../src/protocol/manifest.js';
import { manifestFor } from '../fixtures/fake-seeder.js';
import { opensDirect } from '../helpers/direct-io.js';
import { tempDir } from '../helpers/temp-dir.js';

const PIECE = 16 * 1024;

const manifestOf = (data: Buffer): Manifest => manifestFor(data, PIECE);

const piece = (data: Buffer, i: number) => data.subarray(i * PIECE, (i + 1) * PIECE);

let dir: string;
beforeEach(async () => {
  dir = tempDir('coterie-partial-').path;
});

/** A 4-piece download stopped with pieces 0 and 2 written (and listed in its resume file). */
async function stoppedWithPieces0And2() {
  const data = randomBytes(PIECE * 4);
  const manifest = manifestOf(data);
  const fileId = computeFileId(manifest);
  const dest = join(dir, 'out.bin');
  const f = await openPartialFile({ manifest, fileId, dest });
  await f.writePiece(0, piece(data, 0));
  await f.writePiece(2, piece(data, 2));
  await f.close();
  return { data, manifest, fileId, dest };
}

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
    const { manifest, fileId, dest } = await stoppedWithPieces0And2();
    // Damage piece 2 on disk behind the resume file's back.
    const h = await import('node:fs/promises').then((m) => m.open(`${dest}.part`, 'r+'));
    await h.write(Buffer.from('xx'), 0, 2, 2 * PIECE + 5);
    await h.close();
    const g = await openPartialFile({ manifest, fileId, dest });
    expect(g.resumedPieces).toBe(1);
    expect([0, 1, 2, 3].map((i) => g.hasPiece(i))).toEqual([true, false, false, false]);
    await g.close();
  });

  it('re-checks many kept pieces on a hashing worker, reads running ahead, and keeps only good ones', async () => {
    const count = 13;
    const data = randomBytes(PIECE * (count - 1) + 777);
    const manifest = manifestOf(data);
    const fileId = computeFileId(manifest);
    const dest = join(dir, 'many.bin');
    const f = await openPartialFile({ manifest, fileId, dest });
    for (let i = 0; i < count; i++) if (i !== 4) await f.writePiece(i, piece(data, i));
    await f.close();
    const h = await import('node:fs/promises').then((m) => m.open(`${dest}.part`, 'r+'));
    // Flip the byte (a fixed '!' changed nothing where the random data already held one: 1 run in 256).
    for (const bad of [1, 7, 12]) {
      const at = bad * PIECE + 3;
      await h.write(Buffer.from([data[at]! ^ 0xff]), 0, 1, at);
    }
    await h.close();
    const hasher = createPieceHasher({ workers: 1 });
    const seen: number[] = [];
    try {
      const g = await openPartialFile({
        manifest,
        fileId,
        dest,
        hashPiece: (b) => hasher.hash(b),
        onRecheck: (done, total) => {
          expect(total).toBe(count - 1);
          seen.push(done);
        },
      });
      expect(g.resumedPieces).toBe(count - 4);
      const kept = Array.from({ length: count }, (_, i) => g.hasPiece(i));
      expect(kept).toEqual(Array.from({ length: count }, (_, i) => ![1, 4, 7, 12].includes(i)));
      expect(seen).toEqual(Array.from({ length: count - 1 }, (_, i) => i + 1));
      await g.close();
    } finally {
      await hasher.close();
    }
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

  it('starts over, or keeps only pieces that re-check, whatever the resume file holds', async () => {
    const { data, manifest, fileId, dest } = await stoppedWithPieces0And2();
    const resumePath = `${dest}.part.resume`;
    const saved = JSON.parse(await readFile(resumePath, 'utf8')) as Record<string, unknown>;
    const damaged = fc.oneof(
      fc.constantFrom('null', '[]', '""', '0', ''),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 100 }),
      fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
      // The real file with one field replaced: claims of pieces never written, wrong sizes, junk.
      fc
        .record({
          key: fc.constantFrom('version', 'fileId', 'size', 'pieceSize', 'bitfield'),
          value: fc.oneof(
            fc.jsonValue(),
            fc.uint8Array({ minLength: 1, maxLength: 2 }).map((b) => Buffer.from(b).toString('base64')),
          ),
        })
        .map(({ key, value }) => JSON.stringify({ ...saved, [key]: value })),
    );
    await fc.assert(
      fc.asyncProperty(damaged, async (text) => {
        await writeFile(resumePath, text);
        const g = await openPartialFile({ manifest, fileId, dest });
        try {
          // Only what is on disk and hashes right is kept: pieces 0 and 2, or fewer.
          expect(g.verifiedCount()).toBeLessThanOrEqual(2);
          for (const i of [0, 2]) {
            if (g.hasPiece(i)) expect((await g.read(i, 0, PIECE)).equals(piece(data, i))).toBe(true);
          }
          for (const i of [1, 3]) expect(g.hasPiece(i)).toBe(false);
        } finally {
          await g.close();
        }
      }),
      { numRuns: 150 },
    );
  }, 60_000);

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

  it('writes aligned pieces past the page cache, the rest through it, and reads both back', async () => {
    const data = randomBytes(PIECE * 6 + 1000);
    const manifest = manifestOf(data);
    const dest = join(dir, 'direct.bin');
    const f = await openPartialFile({ manifest, fileId: computeFileId(manifest), dest, directIo: true });
    const pool = new AlignedSlotPool(PIECE);
    const inSlot = (i: number) => {
      const p = piece(data, i);
      const slot = pool.take().subarray(0, p.length);
      p.copy(slot);
      return slot;
    };
    // Adjacent aligned pieces (one direct writev), a plain Buffer between them, the short last piece.
    await Promise.all([f.writePiece(0, inSlot(0)), f.writePiece(1, inSlot(1))]);
    await f.writePiece(2, Buffer.from(piece(data, 2)));
    await Promise.all([f.writePiece(3, inSlot(3)), f.writePiece(5, inSlot(5)), f.writePiece(6, inSlot(6))]);
    await f.writePiece(4, inSlot(4));
    // Where the file system takes O_DIRECT (ext4 does; tmpfs before Linux 6.6 does not), the
    // five aligned whole pieces went that way; never the plain Buffer nor the short last one.
    expect(f.directBytes).toBe(opensDirect(`${dest}.part`) ? PIECE * 5 : 0);
    // Served to other downloaders from the file: what was written, whichever way.
    for (let i = 0; i < 7; i++) {
      expect((await f.read(i, 0, piece(data, i).length)).equals(piece(data, i))).toBe(true);
    }
    await f.finish();
    expect((await readFile(dest)).equals(data)).toBe(true);
  });

  it('packs bitfields most significant bit first (resume format v1 fixture)', () => {
    const bits = new Bitfield(10);
    for (const i of [0, 2, 8, 9]) bits.set(i);
    expect(bits.toBuffer().toString('hex')).toBe('a0c0');
    expect([...Bitfield.fromBuffer(Buffer.from('a0c0', 'hex'), 10).present()]).toEqual([0, 2, 8, 9]);
  });

  it('writes, and resumes from, the version 1 resume file byte for byte', async () => {
    const { manifest, fileId, dest } = await stoppedWithPieces0And2();
    const v1 = JSON.stringify({ version: 1, fileId, size: PIECE * 4, pieceSize: PIECE, bitfield: 'oA==' });
    expect(await readFile(`${dest}.part.resume`, 'utf8')).toBe(v1);
    // The same file as an earlier version wrote it, pieces 0 and 2 (0b1010_0000): both kept.
    await writeFile(`${dest}.part.resume`, v1);
    const g = await openPartialFile({ manifest, fileId, dest });
    expect(g.resumedPieces).toBe(2);
    expect([0, 1, 2, 3].map((i) => g.hasPiece(i))).toEqual([true, false, true, false]);
    await g.close();
  });
});
