import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { callDaemon } from '../../src/peer/control/client.js';
import type { FileSummary } from '../../src/protocol/api.js';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { shareFolderInGroup } from '../helpers/folder-group.js';
import { until } from '../helpers/wait.js';

// `download_file … --sequential` of a folder through the real binary: the share's pieces come in
// the order of its files, the first and the last first (issue 17). The download is held to
// 128 KiB/s so that it lasts seconds; the test watches each file appear at its place (a file is
// named in place when its last piece is written) and checks the order they came in. While it
// runs, bob serves the pieces he has as a partial seeder of the folder, as for a file.

type Name = 'alice' | 'bob';
const FILES = 48;
const FILE_BYTES = 16 * 1024;
/** Pieces the scheduler keeps asked for at once, and a margin: they may land in any order. */
const IN_FLIGHT = 10;
const name = (i: number) => `part/f${String(i).padStart(2, '0')}.bin`;

describe('a folder downloaded with --sequential', { timeout: 120_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-folder-seq-');
  const { root, ok } = swarm;
  const src = join(root, 'files', 'album');

  beforeAll(async () => {
    mkdirSync(join(src, 'part'), { recursive: true });
    for (let i = 0; i < FILES; i++) writeFileSync(join(src, name(i)), Buffer.alloc(FILE_BYTES, i + 1));
    await shareFolderInGroup(swarm, ['alice', 'bob'], src, `sharing folder 'album' (${FILES} files`);
  }, 60_000);

  it('fetches the files in order, the first and the last first, byte-identical', async () => {
    const dest = join(root, 'bob-album');
    await ok('bob', 'download_file', 'rel', 'album', dest, '--sequential', '--limit', '128KiB/s');
    // The poll at which each file was first seen at its place.
    const seenAt: number[] = new Array(FILES).fill(-1);
    let polls = 0;
    const partial = until('bob listed as a partial seeder of the folder', async () => {
      const { files } = (await callDaemon(swarm.dir('alice'), 'list_files', ['rel'])) as {
        files: FileSummary[];
      };
      return (files.find((f) => f.name === 'album')?.partialSeeders ?? 0) >= 1;
    });
    await until(
      'every file at its place',
      () => {
        polls++;
        for (let i = 0; i < FILES; i++)
          if (seenAt[i]! < 0 && existsSync(join(dest, name(i)))) seenAt[i] = polls;
        return seenAt.every((t) => t >= 0);
      },
      90_000,
      10,
    );
    await partial;
    // Seen over several polls, or the order says nothing.
    expect(new Set(seenAt).size).toBeGreaterThan(5);
    // The last file comes with the first ones (it is asked for second).
    expect(seenAt[FILES - 1]!).toBeLessThanOrEqual(seenAt[IN_FLIGHT]!);
    // Every other file comes after all but the last few before it (those asked for at once).
    for (let k = IN_FLIGHT; k < FILES - 1; k++) {
      for (let j = 0; j < k - IN_FLIGHT; j++)
        expect(seenAt[j]!, `${name(j)} before ${name(k)}`).toBeLessThanOrEqual(seenAt[k]!);
    }
    for (let i = 0; i < FILES; i++) {
      expect(readFileSync(join(dest, name(i))).equals(readFileSync(join(src, name(i)))), name(i)).toBe(true);
    }
  });
});
