import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import {
  choosePieceSize,
  computeFileId,
  encodeManifest,
  MAX_PIECES,
  type Manifest,
  pieceCount,
  validateManifest,
} from '../../src/protocol/manifest.js';

const h = (s: string) => createHash('sha256').update(s).digest('hex');

describe('manifest format', () => {
  it('chooses power-of-two piece sizes that keep the piece count bounded', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (size) => {
        const p = choosePieceSize(size);
        expect(p & (p - 1)).toBe(0);
        expect(pieceCount(size, p)).toBeLessThanOrEqual(MAX_PIECES);
      }),
    );
    expect(choosePieceSize(0)).toBe(64 * 1024);
    expect(choosePieceSize(4 * 1024 ** 2)).toBe(64 * 1024);
  });

  it('gives large files larger pieces: about sqrt(size / 1 KiB) of them', () => {
    // Per-piece work (requests, hash jobs, writes, haves) dominated the 16 × 256 MiB swarm with
    // 2,048 pieces of 128 KiB; the file ids of such files differ from the earlier rule's.
    expect(choosePieceSize(256 * 1024 ** 2)).toBe(512 * 1024);
    expect(choosePieceSize(1024 ** 3)).toBe(1024 * 1024);
    expect(choosePieceSize(16 * 1024 ** 3)).toBe(4 * 1024 * 1024);
    expect(choosePieceSize(16 * 1024 ** 2)).toBe(128 * 1024);
  });

  it('has a stable canonical encoding (golden bytes)', () => {
    const m: Manifest = { version: 1, size: 20_000, pieceSize: 16_384, pieces: [h('a'), h('b')] };
    const bytes = encodeManifest(m);
    expect(bytes.subarray(0, 21).toString('hex')).toBe(
      '4354524d01' + '0000000000004e20' + '00004000' + '00000002',
    );
    expect(computeFileId(m)).toBe(createHash('sha256').update(bytes).digest('hex'));
  });

  it('rejects absurd manifests with INVALID_MANIFEST, never another error', () => {
    const bad: unknown[] = [
      null,
      {},
      { version: 1, size: -1, pieceSize: 16384, pieces: [] },
      { version: 1, size: 10, pieceSize: 16384, pieces: [] },
      { version: 1, size: 10, pieceSize: 1000, pieces: [h('x')] },
      { version: 1, size: 1e15, pieceSize: 16384, pieces: new Array(10) },
      { version: 1, size: 10, pieceSize: 16384, pieces: ['ZZ'] },
      { version: 2, size: 0, pieceSize: 16384, pieces: [] },
    ];
    for (const b of bad) expect(() => validateManifest(b)).toThrow(CoterieError);
    fc.assert(
      fc.property(fc.anything(), (v) => {
        try {
          validateManifest(v);
        } catch (err) {
          expect(err).toBeInstanceOf(CoterieError);
        }
      }),
    );
  });
});
