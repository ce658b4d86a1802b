import { randomFillSync } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { choosePieceSize, pieceCount } from '../../src/protocol/manifest.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { shareFolderInGroup } from '../helpers/folder-group.js';
import { until } from '../helpers/wait.js';

// `download_file … --sequential` of one file between two real daemons (issue 17): a file of
// 80 MiB, more than a download's 32 MiB request window, so the order shows beyond the first
// window. What the downloader has verified is read from `<dest>.part.resume` (the bitfield of
// verified pieces it writes, atomically, at most every second) while the download runs, held to
// 8 MiB/s so that it lasts seconds: at every look, the pieces verified are the first and the last
// and a run from the start, apart from those asked for at once past its end.

type Name = 'alice' | 'bob';
const MiB = 1024 * 1024;
const SIZE = 80 * MiB;
const PIECES = pieceCount(SIZE, choosePieceSize(SIZE));
/**
 * Pieces a download held to 8 MiB/s keeps asked for at once (0.2 s of it: 1.6 MiB), and a
 * margin: 4 MiB of pieces (64 of 64 KiB, 8 of the 512 KiB an 80 MiB file gets).
 */
const IN_FLIGHT = Math.ceil((4 * MiB) / choosePieceSize(SIZE));

describe('a file downloaded with --sequential', { timeout: 180_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-file-seq-');
  const { root, ok } = swarm;

  it('verifies the first and last pieces first, then the others in order, byte-identical', async () => {
    const src = join(root, 'files', 'film.bin');
    mkdirSync(join(root, 'files'), { recursive: true });
    writeFileSync(src, randomFillSync(Buffer.alloc(SIZE)));
    await shareFolderInGroup(swarm, ['alice', 'bob'], src, 'film.bin');
    expect(PIECES).toBeGreaterThan(100);

    const dest = join(root, 'bob-film.bin');
    await ok('bob', 'download_file', 'rel', 'film.bin', dest, '--sequential', '--limit', '8MiB/s');
    /** Each distinct bitfield seen in the resume file, in the order seen. */
    const looks: Bitfield[] = [];
    await until(
      'the download to end',
      () => {
        try {
          const state = JSON.parse(readFileSync(`${dest}.part.resume`, 'utf8')) as { bitfield: string };
          const seen = Bitfield.fromBuffer(Buffer.from(state.bitfield, 'base64'), PIECES);
          if (seen.count() !== looks.at(-1)?.count()) looks.push(seen);
        } catch {
          // Not written yet, or already gone with the download's end.
        }
        try {
          return readFileSync(dest).length === SIZE;
        } catch {
          return false;
        }
      },
      150_000,
      20,
    );
    const partial = looks.filter((b) => b.count() > 0 && b.count() < PIECES);
    // Several looks while it ran, or the order says nothing.
    expect(partial.length).toBeGreaterThanOrEqual(4);
    const last = PIECES - 1;
    for (const seen of partial) {
      // The first and the last are asked for first.
      if (seen.count() > IN_FLIGHT) expect([seen.has(0), seen.has(last)]).toEqual([true, true]);
      let run = 1;
      while (run < last && seen.has(run)) run++;
      const middle = [...seen.present()].filter((i) => i !== 0 && i !== last);
      // Nothing verified past the pieces asked for together with the run's next.
      expect(Math.max(0, ...middle), `run to ${run - 1} of ${seen.count()} verified`).toBeLessThan(
        run + IN_FLIGHT,
      );
    }
    expect(readFileSync(dest).equals(readFileSync(src))).toBe(true);
  });
});
