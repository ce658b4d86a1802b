import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliSwarm } from '../helpers/cli-swarm.js';

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

/** Every regular file under `dir`, relative, with its size. */
function filesUnder(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = statSync(p).size;
    }
  };
  walk(dir);
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
    await swarm.startTracker();
    for (const n of ['alice', 'bob', 'carol'] as const) {
      await swarm.startPeer(n);
      await ok(n, 'create_user', n, `${n}-password`);
      await ok(n, 'login', n, `${n}-password`);
    }
    await ok('alice', 'create_group', 'rel');
    for (const n of ['bob', 'carol'] as const) {
      await ok(n, 'join_group', 'rel');
      await ok('alice', 'accept_request', 'rel', n);
    }
    const shared = await ok('alice', 'upload_file', src, 'rel');
    expect(shared.out).toContain(`sharing folder 'big' (${FILES} files`);
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
