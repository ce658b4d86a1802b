// The disk's share of a download, for bench/transfer.ts: a download's own disk path
// (openPartialFile with O_DIRECT, its one writer batching adjacent pieces, then
// finish(): fsync and rename) fed every piece of the file as fast as it takes them,
// with no network, no TLS and no hashing. No download that makes its file durable
// before naming it (DESIGN.md, Files and pieces) finishes sooner on this disk; on a
// VM whose virtual disk caches writes in the host, most of that time can be the
// final fsync, while the host writes back what the writes left in its cache.
import { randomFillSync } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { AlignedSlotPool } from '../src/peer/files/download/io-memory.js';
import { DOWNLOAD_DEFAULTS } from '../src/peer/files/download/options.js';
import { openPartialFile } from '../src/peer/files/download/partial-file.js';
import { type Manifest, pieceCount, pieceLength } from '../src/protocol/manifest.js';

export interface DiskRun {
  /** From opening `<dest>.part` to the renamed, fsynced file. */
  seconds: number;
  /** The part of it spent in finish(): the final fsync, rename and directory fsync. */
  flushSeconds: number;
}

/** Writes `manifest`'s worth of pieces to `dest` the way a download does (O_DIRECT, preallocated), and times it. */
export async function diskOnlyOnce(
  manifest: Manifest,
  fileId: string,
  dest: string,
  preallocate: boolean = DOWNLOAD_DEFAULTS.preallocate,
): Promise<DiskRun> {
  await rm(dest, { force: true });
  const count = pieceCount(manifest.size, manifest.pieceSize);
  // As many pieces waiting for the disk as a download lets wait (its pending-write budget).
  const depth = Math.max(1, Math.floor(DOWNLOAD_DEFAULTS.maxPendingWriteBytes / manifest.pieceSize));
  const pool = new AlignedSlotPool(manifest.pieceSize);
  // The writer only reads a piece's memory: the same few random pieces go round.
  const slots = Array.from({ length: depth }, () => randomFillSync(pool.take()));
  const t0 = performance.now();
  const file = await openPartialFile({
    manifest,
    fileId,
    dest,
    overwrite: true,
    directIo: true,
    preallocate,
  });
  const writing = new Set<Promise<void>>();
  for (let i = 0; i < count; i++) {
    while (writing.size >= depth) await Promise.race(writing);
    const w: Promise<void> = file
      .writePiece(i, slots[i % depth]!.subarray(0, pieceLength(manifest, i)))
      .finally(() => writing.delete(w));
    writing.add(w);
  }
  await Promise.all(writing);
  const t1 = performance.now();
  await file.finish();
  const t2 = performance.now();
  await rm(dest, { force: true });
  return { seconds: (t2 - t0) / 1000, flushSeconds: (t2 - t1) / 1000 };
}
