import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type DownloadHandle,
  type DownloadOptions,
  download,
  openPartialFile,
} from '../../src/peer/files/download/index.js';

import { computeFileId, type Manifest } from '../../src/protocol/manifest.js';
import { createIdentity, type PeerIdentity } from '../../src/wire/index.js';
import { manifestFor } from '../fixtures/fake-seeder.js';
import { type MemorySwarm, startMemorySwarm, swarmDownloadOptions } from '../helpers/memory-swarm.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// A downloader serves the swarm the pieces it verified last from memory (recent-pieces.ts): its
// writes go past the page cache, and every block served was a read back from the disk. Counted
// here: the reads its store (the partial file) is asked for while the download's piece source
// serves verified pieces.

const PIECE = 16 * 1024;
const PIECES = 64;

let me: PeerIdentity;
let dir: string;
let data: Buffer;
let manifest: Manifest;
let fileId: string;
let swarm: MemorySwarm | undefined;
let handle: DownloadHandle | undefined;

beforeAll(async () => {
  me = await createIdentity();
});
beforeEach(async () => {
  dir = tempDir('coterie-recent-').path;
  data = randomBytes(PIECE * PIECES);
  manifest = manifestFor(data, PIECE);
  fileId = computeFileId(manifest);
  await writeFile(join(dir, 'seeded.bin'), data);
});
afterEach(async () => {
  handle?.abort();
  await handle?.done.catch(() => undefined);
  handle = undefined;
  await swarm?.close();
  swarm = undefined;
});

/** A download from one seeder slow enough to be under way for a few seconds; its store counts reads. */
async function start(over: Partial<DownloadOptions> = {}) {
  swarm = await startMemorySwarm({
    manifest,
    fileId,
    downloader: me,
    seeders: [{ path: join(dir, 'seeded.bin'), link: () => ({ delayMs: 1, bytesPerSecond: 256 * 1024 }) }],
  });
  const storeReads = { count: 0 };
  const dest = join(dir, 'out.bin');
  handle = download({
    manifest,
    fileId,
    dest,
    ...swarmDownloadOptions(swarm, me),
    openStore: async ({ hashPiece }) => {
      const file = await openPartialFile({ manifest, fileId, dest, hashPiece });
      const read = file.read.bind(file);
      return Object.assign(file, {
        read: (index: number, offset: number, length: number, into?: Buffer) => {
          storeReads.count++;
          return read(index, offset, length, into);
        },
      });
    },
    ...over,
  });
  return { handle, storeReads };
}

/** Serves every verified piece through the download's piece source, as the piece server does; checks the bytes. */
async function serveVerified(h: DownloadHandle): Promise<number> {
  const source = h.pieceSource;
  let served = 0;
  for (let i = 0; i < PIECES; i++) {
    if (!source.bitfield.has(i)) continue;
    const got = await source.read(i, 0, PIECE, Buffer.alloc(PIECE));
    expect(got.equals(data.subarray(i * PIECE, (i + 1) * PIECE)), `piece ${i}`).toBe(true);
    // A block within the piece too.
    const block = await source.read(i, 4096, 100);
    expect(block.equals(data.subarray(i * PIECE + 4096, i * PIECE + 4196)), `piece ${i} block`).toBe(true);
    served++;
  }
  return served;
}

describe('a download serves the pieces it verified last from memory', () => {
  it('reads none of them back from its store', async () => {
    const { handle: h, storeReads } = await start();
    await until('8 pieces verified', () => h.pieceSource.bitfield.count() >= 8, 10_000);
    const served = await serveVerified(h);
    expect(served).toBeGreaterThanOrEqual(8);
    expect(served).toBeLessThan(PIECES);
    expect(storeReads.count).toBe(0);
  }, 15_000);

  it('keeps at most recentPiecesBytes of them: older pieces are read from the store', async () => {
    const { handle: h, storeReads } = await start({ recentPiecesBytes: 4 * PIECE });
    await until('10 pieces verified', () => h.pieceSource.bitfield.count() >= 10, 10_000);
    const served = await serveVerified(h);
    // Pieces verified while serving may be kept too; at most four are kept at any time, and
    // every piece is served twice (whole, then a block).
    expect(storeReads.count).toBeGreaterThanOrEqual(
      2 * (served - 4 - (h.pieceSource.bitfield.count() - served)),
    );
    expect(storeReads.count).toBeGreaterThan(0);
  }, 15_000);
});
