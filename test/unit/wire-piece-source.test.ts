import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { createManifest } from '../../src/core/manifest.js';
import type { Manifest } from '../../src/protocol/manifest.js';
import { cachedReadsAvailable, MAX_CACHED_READ_BYTES } from '../../src/wire/cached-read.js';
import { FilePieceSource } from '../../src/wire/piece-source.js';
import { suiteTempDir } from '../helpers/temp-dir.js';

const dir = suiteTempDir('coterie-source-').path;
let path: string;
let data: Buffer;
let manifest: Manifest;

beforeAll(async () => {
  path = join(dir, 'f');
  data = randomBytes(3 * 16384 + 5);
  await writeFile(path, data);
  ({ manifest } = await createManifest(path, { pieceSize: 16384 }));
});

describe('FilePieceSource', () => {
  it('reads blocks by position, and refuses ranges outside a piece', async () => {
    const s = await FilePieceSource.open(path, manifest);
    try {
      expect(s.bitfield.isComplete()).toBe(true);
      expect((await s.read(1, 100, 50)).equals(data.subarray(16384 + 100, 16384 + 150))).toBe(true);
      expect((await s.read(3, 0, 5)).equals(data.subarray(3 * 16384))).toBe(true);
      await expect(s.read(3, 0, 6)).rejects.toMatchObject({ code: 'PIECE_OUT_OF_RANGE' });
      await expect(s.read(0, 16000, 1000)).rejects.toMatchObject({ code: 'PIECE_OUT_OF_RANGE' });
    } finally {
      await s.close();
    }
    await expect(s.read(0, 0, 1)).rejects.toMatchObject({ code: 'PIECE_UNAVAILABLE' });
  });

  // A file just written is in the page cache: its blocks are copied on the calling thread, with
  // none of the thread pool's hand-offs (wire/cached-read.ts). Where the addon is not built,
  // every read goes to the pool as before.
  it.skipIf(!cachedReadsAvailable())('reads cached blocks without the thread pool', async () => {
    const s = await FilePieceSource.open(path, manifest);
    try {
      const framed = Buffer.alloc(13 + 16384);
      for (let piece = 0; piece < 3; piece++) {
        const into = framed.subarray(13);
        expect(await s.read(piece, 0, 16384, into)).toBe(into);
        expect(into.equals(data.subarray(piece * 16384, (piece + 1) * 16384))).toBe(true);
      }
      expect((await s.read(3, 1, 4)).equals(data.subarray(3 * 16384 + 1))).toBe(true);
      expect(s.readCounts).toEqual({ cached: 4, pool: 0 });
    } finally {
      await s.close();
    }
  });

  it.skipIf(!cachedReadsAvailable())(
    'reads a whole large piece on the thread pool, not the event loop',
    async () => {
      const bigPath = join(dir, 'big');
      const big = randomBytes(2 * MAX_CACHED_READ_BYTES);
      await writeFile(bigPath, big);
      const { manifest: bigManifest } = await createManifest(bigPath, { pieceSize: big.length });
      const s = await FilePieceSource.open(bigPath, bigManifest);
      try {
        expect((await s.read(0, 0, big.length)).equals(big)).toBe(true);
        expect(
          (await s.read(0, 0, MAX_CACHED_READ_BYTES)).equals(big.subarray(0, MAX_CACHED_READ_BYTES)),
        ).toBe(true);
        expect(s.readCounts).toEqual({ cached: 1, pool: 1 });
      } finally {
        await s.close();
      }
    },
  );

  it('announces each new piece once', async () => {
    const s = await FilePieceSource.open(path, manifest, { bitfield: new Bitfield(4) });
    const seen: number[] = [];
    s.on('have', (p) => seen.push(p));
    s.markHave(2);
    s.markHave(2);
    s.markHave(0);
    expect(seen).toEqual([2, 0]);
    expect([...s.bitfield.present()]).toEqual([0, 2]);
    await s.close();
  });

  it('refuses a missing file and a bitfield of the wrong size', async () => {
    await expect(FilePieceSource.open(join(dir, 'nope'), manifest)).rejects.toMatchObject({
      code: 'PATH_INVALID',
    });
    await expect(FilePieceSource.open(path, manifest, { bitfield: new Bitfield(3) })).rejects.toMatchObject({
      code: 'INVALID_MANIFEST',
    });
  });

  it('reports a file shorter than its manifest', async () => {
    const short = join(dir, 'short');
    await writeFile(short, data.subarray(0, 20000));
    const s = await FilePieceSource.open(short, manifest);
    await expect(s.read(2, 0, 16384)).rejects.toMatchObject({ code: 'PIECE_UNAVAILABLE' });
    await s.close();
  });
});
