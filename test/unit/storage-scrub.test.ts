import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createManifest } from '../../src/core/manifest.js';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { type Scrubber, startScrub } from '../../src/peer/storage/scrub.js';
import { PeerStore } from '../../src/peer/store/index.js';
import { flipByte } from '../helpers/flip-byte.js';
import { tempDir } from '../helpers/temp-dir.js';
import { until } from '../helpers/wait.js';

// The scrub (issue 16) reads what a storage peer holds at --scrub-mib-s, paced over the pass:
// a large replica takes about its size over the rate, and a folder of many small files is not
// held up by a timer per piece (each once waited about 1 ms for the microseconds it owed).

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;

describe('the scrub', () => {
  let scrub: Scrubber | undefined;
  afterEach(() => scrub?.stop());

  const holding = async (setUp: (dir: string, store: PeerStore) => Promise<void>) => {
    const dir = tempDir('coterie-scrub-').path;
    const store = new PeerStore(dir);
    await setUp(dir, store);
    return store;
  };

  it('reads a replica at the rate it is given, and reports a flipped byte', async () => {
    let path = '';
    const store = await holding(async (dir) => {
      path = join(dir, 'big');
      writeFileSync(path, randomBytes(6 * MiB));
    });
    const { manifest, fileId } = await createManifest(path, { pieceSize: 256 * 1024 });
    store.replicas.put({ groupId: 'g', fileId, path, size: manifest.size, heldAt: 1 }, manifest);
    const lost: string[] = [];
    const started = Date.now();
    scrub = startScrub({
      store,
      bytesPerSec: 8 * MiB,
      onLost: (_g, f, why) => lost.push(`${f}:${why}`),
      log,
      pauseMs: 10,
    });
    await until('a pass', () => scrub!.status().passes >= 1, 10_000, 5);
    // 6 MiB at 8 MiB/s is 0.75 s, less the pacer's credit at the start (two tenths of a second of
    // the rate) and the last piece, read unpaced: about 0.52 s. Unpaced, it takes some 20 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(lost).toEqual([]);
    flipByte(path, 5 * MiB);
    await until('the damage found', () => lost.length > 0, 10_000, 5);
    expect(lost).toEqual([`${fileId}:corrupt`]);
  });

  it('checks a folder of 2,000 small files without a wait per piece', async () => {
    let root = '';
    const store = await holding(async (dir) => {
      root = join(dir, 'tree');
      mkdirSync(join(root, 'd'), { recursive: true });
      for (let i = 0; i < 2000; i++) writeFileSync(join(root, 'd', `f${i}`), randomBytes(1 + (i % 200)));
    });
    const { manifest, fileId } = await createTreeManifest(root, { workers: 1 });
    store.replicas.put({ groupId: 'g', fileId, path: root, size: manifest.size, heldAt: 1 }, manifest);
    const lost: string[] = [];
    const waits: number[] = [];
    scrub = startScrub({
      store,
      bytesPerSec: 20 * MiB,
      onLost: (_g, f) => lost.push(f),
      log,
      pauseMs: 60_000,
      sleep: (ms) => {
        waits.push(ms);
        return new Promise((r) => setTimeout(r, ms).unref());
      },
    });
    await until('a pass', () => scrub!.status().passes >= 1, 20_000, 5);
    // 200 KB is well inside the rate's burst: the pass waits only for the pause after it (the
    // scrub once waited a timer per piece, 2,000 of them, about 1 ms each).
    expect(waits).toEqual([60_000]);
    expect(lost).toEqual([]);
  });
});
