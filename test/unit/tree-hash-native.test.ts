import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NATIVE_ADDON_PATH } from '../../src/core/piece-hash.js';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { tempDir } from '../helpers/temp-dir.js';

// A folder's hashing workers hash many small files' pieces in one native call, two at a time
// where the CPU has the SHA extensions (native/sha256-pieces.c): the digests must be
// createHash's over every length class, paired or alone, and nothing written outside `out`.

type Pieces = (
  data: Uint8Array,
  lengths: Uint32Array,
  count: number,
  out: Uint8Array,
  outOffset: number,
) => void;
const { sha256Pieces } = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as { sha256Pieces: Pieces };

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();
// Empty, one byte, either side of the padding's 56, a block, two, a page, a piece and past it.
const LENGTHS = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 4095, 4096, 8191, 16_384, 16_385, 3];

describe('sha256Pieces (native)', () => {
  it("gives createHash's digests for every length class, in pairs and alone, at an offset", () => {
    // Every order of neighbours matters to the pairs: rotate the list so each length meets others.
    for (let r = 0; r < LENGTHS.length; r++) {
      const lengths = [...LENGTHS.slice(r), ...LENGTHS.slice(0, r)];
      for (const count of [lengths.length, lengths.length - 1, 1]) {
        const data = randomBytes(lengths.slice(0, count).reduce((a, b) => a + b, 0));
        const out = Buffer.alloc(5 + 32 * count + 5, 0xee);
        sha256Pieces(data, Uint32Array.from(lengths), count, out, 5);
        let at = 0;
        for (let i = 0; i < count; i++) {
          expect(out.subarray(5 + 32 * i, 5 + 32 * (i + 1))).toEqual(
            sha(data.subarray(at, at + lengths[i]!)),
          );
          at += lengths[i]!;
        }
        expect([...out.subarray(0, 5), ...out.subarray(5 + 32 * count)]).toEqual(new Array(10).fill(0xee));
      }
    }
  });

  it('refuses pieces or digests that would not fit, writing nothing', () => {
    const data = randomBytes(100);
    const out = Buffer.alloc(64, 0xee);
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (err) {
        return (err as { code?: string }).code;
      }
      return 'accepted';
    };
    expect(code(() => sha256Pieces(data, Uint32Array.from([50, 51]), 2, out, 0))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => sha256Pieces(data, Uint32Array.from([50, 50]), 2, out, 1))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => sha256Pieces(data, Uint32Array.from([50]), 2, out, 0))).toBe('ERR_OUT_OF_RANGE');
    expect(code(() => sha256Pieces(data, Uint32Array.from([50]), -1, out, 0))).toBe('ERR_INVALID_ARG_TYPE');
    expect(code(() => sha256Pieces(data, [50] as never, 1, out, 0))).toBe('ERR_INVALID_ARG_TYPE');
    expect(out.every((b) => b === 0xee)).toBe(true);
  });
});

describe('a folder hashed natively', () => {
  it('gives the manifest createHash gives, with files small and large, empty, and more than a batch holds', async () => {
    const dir = tempDir('coterie-tree-native-');
    const PIECE = 16 * 1024;
    // Small files of every length class, many (past a batch's 4,096 pieces), and files larger
    // than a batch (1 MiB) that are hashed a chunk at a time, between small ones.
    for (let i = 0; i < 4500; i++) {
      const sub = join(dir.path, `d${String(Math.floor(i / 500)).padStart(2, '0')}`);
      mkdirSync(sub, { recursive: true });
      const size = i % 1000 === 7 ? 1024 * 1024 + 3 * PIECE + 11 : LENGTHS[i % LENGTHS.length]!;
      writeFileSync(join(sub, `f${String(i).padStart(5, '0')}`), randomBytes(size));
    }
    const native = await createTreeManifest(dir.path, { pieceSize: PIECE, workers: 2 });
    const plain = await createTreeManifest(dir.path, { pieceSize: PIECE, workers: 2, native: false });
    expect(native.manifest).toEqual(plain.manifest);
    expect(native.fileId).toBe(plain.fileId);
  }, 60_000);
});
