import type { FileHandle } from 'node:fs/promises';
import type { Bitfield } from '../../../core/bitfield.js';
import { hashPiece as hashOnThisThread } from '../../../core/piece-hash.js';
import { type Manifest, pieceLength } from '../../../protocol/manifest.js';
import { AlignedSlotPool } from './io-memory.js';

/** Kept pieces read ahead of their hashes during a re-check (each a piece of memory). */
const RECHECK_DEPTH = 3;

/**
 * Re-hashes every piece the resume file claims; keeps only those that match.
 * Reads run ahead of the hashes (up to RECHECK_DEPTH pieces), in shared
 * memory that a hashing worker reads without a copy.
 */
export async function recheck(
  handle: FileHandle,
  m: Manifest,
  claimed: Bitfield,
  have: Bitfield,
  options: {
    onRecheck?: (done: number, total: number) => void;
    hashPiece?: (data: Buffer) => Promise<string>;
  },
): Promise<number> {
  const hashPiece = options.hashPiece ?? ((data: Buffer) => Promise.resolve(hashOnThisThread(data)));
  const size = (await handle.stat()).size;
  const total = claimed.count();
  const buffers = new AlignedSlotPool(m.pieceSize);
  const hashing = new Set<Promise<void>>();
  let done = 0;
  let kept = 0;
  for (const i of claimed.present()) {
    const len = pieceLength(m, i);
    if (i * m.pieceSize + len > size) {
      options.onRecheck?.(++done, total);
      continue;
    }
    while (hashing.size >= RECHECK_DEPTH) await Promise.race(hashing);
    const buf = buffers.take().subarray(0, len);
    const { bytesRead } = await handle.read(buf, 0, len, i * m.pieceSize);
    // A piece that cannot be hashed (short read, worker gone) is not kept: refetched, never trusted.
    const check = (bytesRead === len ? hashPiece(buf) : Promise.resolve(''))
      .catch(() => '')
      .then((digest) => {
        if (digest === m.pieces[i]) {
          have.set(i);
          kept++;
        }
        options.onRecheck?.(++done, total);
      })
      .finally(() => {
        buffers.give(buf);
        hashing.delete(check);
      });
    hashing.add(check);
  }
  await Promise.all(hashing);
  return kept;
}
