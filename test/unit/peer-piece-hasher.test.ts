import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hashPiece } from '../../src/core/piece-hash.js';
import { createPieceHasher, sharedHashWorkers } from '../../src/peer/files/download/hasher.js';
import { nativeSha256, nativeSha256Pair } from '../../src/peer/files/download/native.js';
import type { ThreadPoolSha256 } from '../../src/peer/files/download/thread-pool-hasher.js';

/** Whether this CPU has the SHA extensions (Linux says so in /proc/cpuinfo; elsewhere: unknown). */
function cpuHasShaNi(): boolean | undefined {
  try {
    return /^flags\s*:.*\bsha_ni\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return undefined;
  }
}

/** Thread-pool functions that hash with createHash and count their calls. */
function countingSha256(): ThreadPoolSha256 & { singles: number; pairs: number } {
  const counts = {
    singles: 0,
    pairs: 0,
    sha256(data: Uint8Array) {
      counts.singles++;
      return Promise.resolve(hashPiece(data));
    },
    sha256Pair(a: Uint8Array, b: Uint8Array) {
      counts.pairs++;
      return Promise.resolve([hashPiece(a), hashPiece(b)] as [string, string]);
    },
  };
  return counts;
}

/** A piece in shared memory, as the download's buffer pools allocate them (what goes to a worker). */
function sharedPiece(bytes: number, seed: number): Buffer {
  const buf = Buffer.from(new SharedArrayBuffer(bytes + 16), 8, bytes);
  for (let i = 0; i < bytes; i++) buf[i] = (i * 31 + seed) & 0xff;
  return buf;
}

describe('piece hasher', () => {
  it('downloads share the process hash workers, and one closing leaves the others hashing', async () => {
    const a = createPieceHasher({ workers: 1, native: false });
    const b = createPieceHasher({ workers: 1, native: false });
    const c = createPieceHasher({ workers: 1, native: false });
    // One worker for all three: starting one per download cost more CPU than the hashing itself.
    expect(sharedHashWorkers()).toBe(1);
    const pieces = [0, 1, 2, 3].map((seed) => sharedPiece(256 * 1024, seed));
    const [da, db] = await Promise.all([a.hash(pieces[0]!), b.hash(pieces[1]!)]);
    expect(da).toBe(hashPiece(pieces[0]!));
    expect(db).toBe(hashPiece(pieces[1]!));

    // A hash of a closed hasher fails; the others' go on in the same worker.
    const doomed = a.hash(pieces[2]!);
    await a.close();
    await expect(doomed).rejects.toThrow('hasher closed');
    expect(await b.hash(pieces[3]!)).toBe(hashPiece(pieces[3]!));
    expect(await c.hash(pieces[2]!)).toBe(hashPiece(pieces[2]!));
    // A closed hasher still answers, on the calling thread.
    expect(await a.hash(pieces[1]!)).toBe(hashPiece(pieces[1]!));
    await b.close();
    await c.close();
    expect(sharedHashWorkers()).toBe(1); // kept for the next download until idle
  });

  it('hashes every piece of a shared arena by position, the arena sent once per download', async () => {
    const KiB = 1024;
    const arena = new SharedArrayBuffer(4 * 64 * KiB);
    const at = (i: number) => {
      const buf = Buffer.from(arena, i * 64 * KiB, 64 * KiB);
      for (let k = 0; k < buf.length; k++) buf[k] = (k * 7 + i * 13) & 0xff;
      return buf;
    };
    const pieces = [0, 1, 2, 3].map(at);
    const a = createPieceHasher({ workers: 1, native: false });
    const b = createPieceHasher({ workers: 1, native: false });
    // The first piece carries the arena, the next names it; another download's use of the
    // same memory is its own, and its letting go leaves this one's arena in the worker.
    expect(await a.hash(pieces[0]!)).toBe(hashPiece(pieces[0]!));
    expect(await a.hash(pieces[1]!)).toBe(hashPiece(pieces[1]!));
    expect(await b.hash(pieces[2]!)).toBe(hashPiece(pieces[2]!));
    await b.close();
    // Rewritten in place (a slot reused for another piece): the worker reads the bytes as they are now.
    pieces[1]!.fill(0x5a);
    expect(await a.hash(pieces[1]!)).toBe(hashPiece(pieces[1]!));
    expect(await a.hash(pieces[3]!)).toBe(hashPiece(pieces[3]!));
    await a.close();
  });

  it('hashes on the thread pool where the native addon is built: any buffer, no worker started', async () => {
    // The addon is built by `npm ci` (node-gyp rebuild after changing native/), as the preallocate tests expect.
    expect(nativeSha256).toBeTypeOf('function');
    const before = sharedHashWorkers();
    const h = createPieceHasher({ workers: 1 });
    const plain = Buffer.from('not shared, hashed without a copy all the same');
    const pieces = [sharedPiece(512 * 1024, 1), sharedPiece(300_001, 2), plain, Buffer.alloc(0)];
    const digests = await Promise.all(pieces.map((p) => h.hash(p)));
    expect(digests).toEqual(pieces.map((p) => hashPiece(p)));
    expect(sharedHashWorkers()).toBe(before);
    // Hashes under way or waiting for their turn fail when the download closes its hasher.
    const doomed = [h.hash(pieces[0]!), h.hash(pieces[1]!), h.hash(pieces[2]!)];
    await h.close();
    for (const d of doomed) await expect(d).rejects.toThrow('hasher closed');
    expect(await h.hash(plain)).toBe(hashPiece(plain));
  });

  it('the addon hashes two pieces in one pass where the CPU has SHA-NI, each digest as createHash gives it', async () => {
    if (cpuHasShaNi() === true) expect(nativeSha256Pair).toBeTypeOf('function');
    if (nativeSha256Pair === undefined) return; // no SHA extensions: pieces are hashed one a job
    // Every class of length: empty, within a block, either side of the padding's 56 bytes, a
    // block and a byte past it, two blocks, pieces; equal and unequal pairs (the last piece).
    const lengths = [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 300_001, 512 * 1024];
    for (const la of lengths) {
      for (const lb of lengths) {
        const a = randomBytes(la);
        const b = randomBytes(lb);
        expect(await nativeSha256Pair(a, b)).toEqual([hashPiece(a), hashPiece(b)]);
      }
    }
    // Views into a larger buffer at an odd offset, as a frame's payload may be.
    const big = randomBytes(3 * 65_536 + 7);
    const [x, y] = [big.subarray(3, 65_539), big.subarray(65_539, 3 * 65_536 + 7)];
    expect(await nativeSha256Pair(x, y)).toEqual([hashPiece(x), hashPiece(y)]);
  });

  it('hashes two waiting pieces as one pair, and a piece alone after a short wait for a second', async () => {
    const native = countingSha256();
    const h = createPieceHasher({ workers: 1, native });
    const pieces = [0, 1, 2, 3, 4].map((seed) => sharedPiece(64 * 1024, seed));
    // Two at once: one pair.
    expect(await Promise.all([h.hash(pieces[0]!), h.hash(pieces[1]!)])).toEqual(
      [pieces[0]!, pieces[1]!].map((p) => hashPiece(p)),
    );
    expect([native.pairs, native.singles]).toEqual([1, 0]);
    // Alone: hashed by itself once no second came.
    expect(await h.hash(pieces[2]!)).toBe(hashPiece(pieces[2]!));
    expect([native.pairs, native.singles]).toEqual([1, 1]);
    // Three at once with one job at a time: a pair, then the third (alone, once it has waited).
    const three = await Promise.all([h.hash(pieces[2]!), h.hash(pieces[3]!), h.hash(pieces[4]!)]);
    expect(three).toEqual([pieces[2]!, pieces[3]!, pieces[4]!].map((p) => hashPiece(p)));
    expect([native.pairs, native.singles]).toEqual([2, 2]);
    // A piece waiting for a partner fails when the download closes its hasher.
    const doomed = h.hash(pieces[0]!);
    await h.close();
    await expect(doomed).rejects.toThrow('hasher closed');
    expect([native.pairs, native.singles]).toEqual([2, 2]);
  });

  it('hashes one piece a job, without waiting for a second, where the addon has no pair', async () => {
    let singles = 0;
    const sha256 = (data: Uint8Array) => {
      singles++;
      return Promise.resolve(hashPiece(data));
    };
    const h = createPieceHasher({ workers: 1, native: { sha256 } });
    const pieces = [0, 1].map((seed) => sharedPiece(1000, seed));
    expect(await Promise.all(pieces.map((p) => h.hash(p)))).toEqual(pieces.map((p) => hashPiece(p)));
    expect(singles).toBe(2);
    await h.close();
  });

  it('hashes on the calling thread with no workers or an unshared buffer', async () => {
    const h = createPieceHasher({ workers: 0 });
    const plain = Buffer.from('not shared');
    expect(await h.hash(plain)).toBe(hashPiece(plain));
    await h.close();
  });
});
