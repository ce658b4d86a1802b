import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliSwarm } from '../helpers/cli-swarm.js';
import { filesUnder, shareFolderInGroup } from '../helpers/folder-group.js';

// A 2,000-file tree in nested folders (issue 17's test), through the real binary: alice shares it,
// bob downloads it whole (every file byte-identical), carol takes a selection (--only and
// --exclude): the selected files exactly, and 0 bytes on disk for every other one.

type Name = 'alice' | 'bob' | 'carol';
const FILES = 2000;

/** path → size: four folders deep at most, some empty files, sizes 0–3 KiB. */
const TREE: Record<string, number> = Object.fromEntries(
  Array.from({ length: FILES }, (_, i) => {
    const top = ['src', 'docs', 'assets', 'tests'][i % 4]!;
    const path = `${top}/m${i % 13}/n${i % 5}/${i % 3 === 0 ? `deep${i % 7}/` : ''}f${i}${i % 10 === 9 ? '.tmp' : '.dat'}`;
    return [path, i % 17 === 0 ? 0 : (i * 131) % 3072];
  }),
);

function content(path: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  const seed = createHash('sha256').update(path).digest();
  for (let i = 0; i < size; i++) out[i] = seed[i % 32]! ^ (i & 0xff);
  return out;
}

/** Bytes on disk (allocated blocks) under `dir`: what an unselected file must not take. */
function allocatedUnder(dir: string, paths: string[]): number {
  return paths.reduce(
    (n, p) => n + (statSync(join(dir, p), { throwIfNoEntry: false })?.blocks ?? 0) * 512,
    0,
  );
}

describe('a 2,000-file nested folder shared and downloaded', { timeout: 600_000 }, () => {
  const swarm = cliSwarm<Name>('coterie-folders2k-');
  const { root, ok } = swarm;
  const src = join(root, 'files', 'big');

  beforeAll(async () => {
    for (const [path, size] of Object.entries(TREE)) {
      mkdirSync(dirname(join(src, path)), { recursive: true });
      writeFileSync(join(src, path), content(path, size));
    }
    await shareFolderInGroup(swarm, ['alice', 'bob', 'carol'], src, `sharing folder 'big' (${FILES} files`);
  }, 120_000);

  it('downloads the whole tree, every file byte-identical', async () => {
    const dest = join(root, 'bob-big');
    await ok('bob', 'download_file', 'rel', 'big', dest, '--wait');
    expect(filesUnder(dest)).toEqual(TREE);
    for (const [path, size] of Object.entries(TREE)) {
      expect(readFileSync(join(dest, path)).equals(content(path, size)), path).toBe(true);
    }
  });

  it('downloads a selection: the selected files exactly, 0 bytes for the others', async () => {
    const dest = join(root, 'carol-big');
    await ok(
      'carol',
      'download_file',
      'rel',
      'big',
      dest,
      '--only',
      'src/**',
      '--only',
      'docs/m1/**',
      '--exclude',
      '**/*.tmp',
      '--wait',
    );
    const selected = (p: string) => (p.startsWith('src/') || p.startsWith('docs/m1/')) && !p.endsWith('.tmp');
    const want = Object.fromEntries(Object.entries(TREE).filter(([p]) => selected(p)));
    expect(Object.keys(want).length).toBeGreaterThan(400);
    expect(filesUnder(dest)).toEqual(want);
    for (const [path, size] of Object.entries(want)) {
      expect(readFileSync(join(dest, path)).equals(content(path, size)), path).toBe(true);
    }
    const others = Object.keys(TREE).filter((p) => !selected(p));
    expect(allocatedUnder(dest, others)).toBe(0);
  });
});
